// The Eigen kernels, compiled once per instruction-set variant (see binding.gyp):
//   RW_VARIANT_BASELINE: the compiler's default for the target (x86-64: SSE2), namespace rw_baseline
//   RW_VARIANT_AVX2:     -mavx2 -mfma,                                            namespace rw_avx2
//
// Why `Eigen` is renamed per variant: Eigen is all templates, and both variants instantiate the same
// ones (gebp_kernel, tridiagonalization_inplace, BDCSVD<MatrixXd>::compute, ...) with identical mangled
// names but different machine code. The static linker keeps one copy of each, so without the rename the
// baseline path could run AVX2 code (SIGILL on an old CPU) or the AVX2 path baseline code. `#define Eigen
// Eigen_avx2` before the includes puts each variant's whole Eigen in its own namespace (header names in
// #include <...> are not macro-expanded, and Eigen's own includes are relative). The few standard-library
// inline functions both variants share resolve to the baseline copy, which binding.gyp links first.
//
// Only MatrixXd (column-major) decompositions are instantiated; row-major inputs are copied in and
// results copied out, which is O(n²) next to the O(n³) work and keeps the compile time down.

#include "kernels.h"

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>

#if defined(RW_VARIANT_AVX2)
#define RW_NS rw_avx2
#define Eigen Eigen_avx2
#define RW_VARIANT_NAME "avx2"
#elif defined(RW_VARIANT_BASELINE)
#define RW_NS rw_baseline
#define Eigen Eigen_baseline
#define RW_VARIANT_NAME "baseline"
#else
#error "define RW_VARIANT_BASELINE or RW_VARIANT_AVX2"
#endif

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>

#define RW_STR2(x) #x
#define RW_STR(x) RW_STR2(x)

namespace RW_NS {
namespace {

using Eigen::Index;
using Mat = Eigen::MatrixXd;
using Vec = Eigen::VectorXd;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using rw::Result;
using rw::Status;

constexpr Result kOk{Status::Ok, -1, nullptr};

Result status(Status s, int64_t index = -1) { return Result{s, index, nullptr}; }

Mat load(const double* p, Index rows, Index cols) { return Eigen::Map<const RowMat>(p, rows, cols); }

template <typename Derived>
void store(const Eigen::MatrixBase<Derived>& m, double* out) {
  Eigen::Map<RowMat>(out, m.rows(), m.cols()) = m;
}

// Index of the component with the largest magnitude (the first one on exact ties).
template <typename Derived>
Index argmax_abs(const Eigen::MatrixBase<Derived>& v) {
  Index best = 0;
  double best_abs = -1.0;
  for (Index i = 0; i < v.size(); ++i) {
    const double a = std::abs(v(i));
    if (a > best_abs) {
      best_abs = a;
      best = i;
    }
  }
  return best;
}

// +1 or -1: the sign that makes the largest-|.| component of v positive.
template <typename Derived>
double sign_of_largest(const Eigen::MatrixBase<Derived>& v) {
  return v(argmax_abs(v)) < 0.0 ? -1.0 : 1.0;
}

// Runs f, turning C++ exceptions into a status (nothing may escape into N-API code).
template <typename F>
Result guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return status(Status::OutOfMemory);
  } catch (const std::exception& e) {
    (void)e;
    return Result{Status::Failed, -1, "C++ exception in the Eigen kernel"};
  } catch (...) {
    return Result{Status::Failed, -1, "unknown C++ exception in the Eigen kernel"};
  }
}

Result eigh(const double* a, int64_t n, double* values, double* vectors) {
  return guarded([&]() -> Result {
    Mat A = load(a, n, n);
    // SelfAdjointEigenSolver reads only the lower triangle; symmetrise so a slightly asymmetric input
    // (e.g. a float32 Gram matrix) is treated as (A + Aᵀ)/2 rather than by one half.
    Mat S = 0.5 * A + 0.5 * A.transpose();  // (not 0.5 * (A + Aᵀ), which could overflow)
    Eigen::SelfAdjointEigenSolver<Mat> es(S, Eigen::ComputeEigenvectors);
    if (es.info() != Eigen::Success) return status(Status::NoConvergence);
    const Vec& w = es.eigenvalues();  // ascending
    const Mat& V = es.eigenvectors();
    Mat out(n, n);
    for (Index j = 0; j < n; ++j) {
      const Index src = n - 1 - j;
      values[j] = w(src);
      out.col(j) = sign_of_largest(V.col(src)) * V.col(src);
    }
    store(out, vectors);
    return kOk;
  });
}

// A cheap a-posteriori check of an SVD: with a few fixed pseudo-random probe vectors x, the columns of U
// and V must be orthonormal (‖UᵀU x − x‖ small) and U S Vᵀ must reproduce A (‖A x − U S Vᵀ x‖ small).
// O((m + n) k) per probe, so it costs nothing next to the decomposition; it is there to catch a
// divide-and-conquer failure on a pathological spectrum, not to measure accuracy.
bool svd_plausible(const Mat& A, const Mat& U, const Vec& s, const Mat& V) {
  const Index k = s.size();
  const Index probes = 4;
  Mat X(k, probes);
  Mat Y(A.cols(), probes);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
  };
  for (Index c = 0; c < probes; ++c) {
    for (Index i = 0; i < k; ++i) X(i, c) = next();
    for (Index i = 0; i < A.cols(); ++i) Y(i, c) = next();
  }
  const double tol = 1e-9;
  const double orth_u = (U.transpose() * (U * X) - X).norm() / X.norm();
  const double orth_v = (V.transpose() * (V * X) - X).norm() / X.norm();
  // Scaled by max|a_ij| so that inputs near the overflow or underflow thresholds are checked too.
  const double scale = A.cwiseAbs().maxCoeff();
  double recon = 0.0;
  if (scale > 0.0) {
    const Mat As = A / scale;
    const Vec ss = s / scale;
    recon = (As * Y - U * (ss.asDiagonal() * (V.transpose() * Y))).norm() / (As.norm() * Y.norm());
  }
  return std::isfinite(orth_u) && std::isfinite(orth_v) && std::isfinite(recon) && orth_u < tol && orth_v < tol &&
         recon < tol;
}

Result svd(const double* a, int64_t m, int64_t n, double* u, double* s, double* vt) {
  return guarded([&]() -> Result {
    const Index k = std::min<Index>(m, n);
    Mat A = load(a, m, n);
    Mat U, V;
    Vec sv;
    // BDCSVD: divide and conquer on the bidiagonal form (Eigen switches to one-sided Jacobi on blocks
    // of 16 columns or fewer). Backward stable like JacobiSVD (‖A − U S Vᵀ‖ ≈ ε‖A‖, U and V orthogonal
    // to ≈ ε·n), and 10–40× faster at 512–1024. Guarded by svd_plausible; JacobiSVD (two-sided Jacobi
    // with a column-pivoting QR preconditioner, the most accurate Eigen has) is the fallback.
    {
      Eigen::BDCSVD<Mat> bdc(A, Eigen::ComputeThinU | Eigen::ComputeThinV);
      if (bdc.info() == Eigen::Success) {
        U = bdc.matrixU();
        V = bdc.matrixV();
        sv = bdc.singularValues();
      }
    }
    if (sv.size() != k || !svd_plausible(A, U, sv, V)) {
      Eigen::JacobiSVD<Mat> jac(A, Eigen::ComputeThinU | Eigen::ComputeThinV);
      if (jac.info() != Eigen::Success) return status(Status::NoConvergence);
      U = jac.matrixU();
      V = jac.matrixV();
      sv = jac.singularValues();
    }
    // Eigen returns singular values sorted descending already.
    for (Index j = 0; j < k; ++j) {
      const double sg = sign_of_largest(U.col(j));
      U.col(j) *= sg;
      V.col(j) *= sg;
      s[j] = sv(j);
    }
    store(U, u);
    store(V.transpose(), vt);
    return kOk;
  });
}

Result qr(const double* a, int64_t m, int64_t n, double* q, double* r) {
  return guarded([&]() -> Result {
    const Index k = std::min<Index>(m, n);
    Eigen::HouseholderQR<Mat> hqr(load(a, m, n));
    Mat Q = Mat::Identity(m, k);
    Q.applyOnTheLeft(hqr.householderQ());
    Mat R = hqr.matrixQR().topRows(k).triangularView<Eigen::Upper>();
    // Householder gives diag(R) of either sign; flip row i of R and column i of Q so that diag(R) ≥ 0.
    // With full column rank that makes the thin QR unique (and continuous in A).
    for (Index i = 0; i < k; ++i) {
      if (R(i, i) < 0.0) {
        R.row(i).tail(n - i) *= -1.0;  // not the zeros left of the diagonal (no -0)
        Q.col(i) *= -1.0;
      }
    }
    store(Q, q);
    store(R, r);
    return kOk;
  });
}

Result cholesky(const double* a, int64_t n, double* l) {
  return guarded([&]() -> Result {
    Mat A = load(a, n, n);
    Mat S = 0.5 * A + 0.5 * A.transpose();
    Eigen::LLT<Mat> llt(S);
    if (llt.info() != Eigen::Success) return status(Status::NotPositiveDefinite);
    Mat L = llt.matrixL();
    store(L, l);
    return kOk;
  });
}

Result solve_triangular(const double* t, int64_t n, const double* b, int64_t cols, bool lower, bool transpose,
                        double* x) {
  return guarded([&]() -> Result {
    Mat T = load(t, n, n);
    for (Index i = 0; i < n; ++i) {
      if (T(i, i) == 0.0) return status(Status::Singular, i);
    }
    Mat X = load(b, n, cols);
    if (lower) {
      if (transpose)
        T.triangularView<Eigen::Lower>().transpose().solveInPlace(X);
      else
        T.triangularView<Eigen::Lower>().solveInPlace(X);
    } else {
      if (transpose)
        T.triangularView<Eigen::Upper>().transpose().solveInPlace(X);
      else
        T.triangularView<Eigen::Upper>().solveInPlace(X);
    }
    if (!X.allFinite()) return status(Status::Overflow);
    store(X, x);
    return kOk;
  });
}

Result matmul(const double* a, int64_t m, int64_t k, const double* b, int64_t n, double* c) {
  return guarded([&]() -> Result {
    Mat A = load(a, m, k);
    Mat B = load(b, k, n);
    Mat C(m, n);
    C.noalias() = A * B;
    store(C, c);
    return kOk;
  });
}

rw::Kernels make_table() {
  // Eigen's cache-size query is a thread-safe static in 3.4; initParallel() is what Eigen asks callers
  // that use it from several threads (worker_threads here) to call first.
  Eigen::initParallel();
  return rw::Kernels{
      RW_VARIANT_NAME,
      RW_STR(EIGEN_WORLD_VERSION) "." RW_STR(EIGEN_MAJOR_VERSION) "." RW_STR(EIGEN_MINOR_VERSION),
      Eigen::SimdInstructionSetsInUse(),
      eigh,
      svd,
      qr,
      cholesky,
      solve_triangular,
      matmul,
  };
}

}  // namespace

const rw::Kernels& kernels() {
  static const rw::Kernels table = make_table();
  return table;
}

}  // namespace RW_NS
