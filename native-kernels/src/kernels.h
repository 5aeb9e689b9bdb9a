// The Eigen kernels behind the addon, as plain C++ on raw row-major float64 buffers (no N-API here).
// src/kernels.cc is compiled once per instruction-set variant; each variant exposes the same table.
// Inputs are never written; outputs are caller-allocated buffers of the documented sizes. Callers have
// already checked the dimensions and that every input value is finite.
#pragma once

#include <cstdint>

namespace rw {

enum class Status : int {
  Ok = 0,
  NotPositiveDefinite,  // cholesky
  Singular,             // solve_triangular: exact zero on the diagonal (Result::index is its row)
  Overflow,             // solve_triangular: the solution is not finite (numerically singular T)
  NoConvergence,        // the iterative eigen/SVD solver gave up
  OutOfMemory,
  Failed,  // any other C++ exception (Result::what says which)
};

struct Result {
  Status status;
  int64_t index;     // detail for Singular, -1 otherwise
  const char* what;  // static string for Failed, nullptr otherwise
};

struct Kernels {
  const char* variant;       // "baseline" or "avx2"
  const char* eigen_version;  // e.g. "3.4.0"
  const char* simd;           // Eigen's SIMD instruction sets in use, e.g. "SSE, SSE2" or "AVX AVX2 FMA ..."

  // a: n×n (symmetrised as (A + Aᵀ)/2). values: n, descending. vectors: n×n, column j ↔ values[j],
  // each column's largest-|.| component positive.
  Result (*eigh)(const double* a, int64_t n, double* values, double* vectors);
  // a: m×n. k = min(m, n). u: m×k, s: k descending, vt: k×n; column j of u has its largest-|.| component
  // positive (the sign is carried over to row j of vt).
  Result (*svd)(const double* a, int64_t m, int64_t n, double* u, double* s, double* vt);
  // a: m×n. k = min(m, n). q: m×k with orthonormal columns, r: k×n upper trapezoidal, diag(r) ≥ 0.
  Result (*qr)(const double* a, int64_t m, int64_t n, double* q, double* r);
  // a: n×n symmetric positive definite (symmetrised). l: n×n lower triangular, A = L Lᵀ.
  Result (*cholesky)(const double* a, int64_t n, double* l);
  // t: n×n, only the lower (or upper) triangle is read. b, x: n×cols. Solves T X = B or Tᵀ X = B.
  Result (*solve_triangular)(const double* t, int64_t n, const double* b, int64_t cols, bool lower,
                             bool transpose, double* x);
  // a: m×k, b: k×n, c: m×n = A B.
  Result (*matmul)(const double* a, int64_t m, int64_t k, const double* b, int64_t n, double* c);
};

}  // namespace rw

namespace rw_baseline {
const rw::Kernels& kernels();
}

#if defined(RW_HAVE_AVX2)
namespace rw_avx2 {
const rw::Kernels& kernels();
}
#endif
