// N-API glue for the Eigen kernels (node-addon-api, NAPI_VERSION 8: one build serves Node and Electron).
//
// Every function takes row-major Float64Arrays and returns new ones; inputs are never written. Arguments
// are checked here, before any kernel runs: Float64Array type, dimensions positive integers, lengths equal
// to the product of the dimensions, every value finite. Failures are thrown as JS errors carrying
// `code`: 'RW_BAD_ARGUMENT' (a caller's mistake: wrong argument type, count, dimension or length),
// 'RW_BAD_INPUT' (values the data brought: NaN/Inf, a matrix that is not positive definite, a singular
// triangular matrix), 'RW_INTERNAL' (a solver that did not converge, out of memory, anything else).
//
// The kernel table (baseline or AVX2+FMA build of src/kernels.cc) is chosen once per addon instance, at
// load: AVX2 when the CPU (and OS) support AVX2 and FMA, unless RANKWISE_NATIVE_VARIANT=baseline.

#include <napi.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"

namespace {

constexpr const char* kBadArgument = "RW_BAD_ARGUMENT";
constexpr const char* kBadInput = "RW_BAD_INPUT";
constexpr const char* kInternal = "RW_INTERNAL";
// Largest accepted dimension: far beyond the "d up to ~1024" these kernels are for, small enough that
// products of two dimensions are exact in a double and fit an int64.
constexpr int64_t kMaxDim = int64_t{1} << 26;

[[noreturn]] void Throw(Napi::Env env, const char* code, const std::string& message, bool type_error = false) {
  Napi::Error err = type_error ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

// Argument reading for one call of one function; every message starts with the function's name.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), env_(info.Env()), fn_(fn) {
    if (info.Length() < count) {
      Throw(env_, kBadArgument, std::string(fn_) + ": expected " + std::to_string(count) + " arguments, got " +
                                 std::to_string(info.Length()),
            true);
    }
  }

  Napi::Env env() const { return env_; }
  const char* fn() const { return fn_; }

  int64_t Dim(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) {
      Throw(env_, kBadArgument, std::string(fn_) + ": " + name + " must be a number (a positive integer)", true);
    }
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= static_cast<double>(kMaxDim)) || std::floor(d) != d) {
      Throw(env_, kBadArgument,
            std::string(fn_) + ": " + name + " must be a positive integer (at most 2^26), got " + Describe(d));
    }
    return static_cast<int64_t>(d);
  }

  // A Float64Array of exactly rows×cols finite values, row-major.
  const double* Matrix(size_t i, const char* name, int64_t rows, int64_t cols) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Throw(env_, kBadArgument, std::string(fn_) + ": " + name + " must be a Float64Array", true);
    }
    const Napi::Float64Array arr = v.As<Napi::Float64Array>();
    const int64_t want = rows * cols;
    if (static_cast<int64_t>(arr.ElementLength()) != want) {
      Throw(env_, kBadArgument,
            std::string(fn_) + ": " + name + " has length " + std::to_string(arr.ElementLength()) + ", expected " +
                std::to_string(rows) + "×" + std::to_string(cols) + " = " + std::to_string(want));
    }
    const double* p = arr.Data();
    for (int64_t k = 0; k < want; ++k) {
      if (!std::isfinite(p[k])) {
        Throw(env_, kBadInput,
              std::string(fn_) + ": input " + name + " contains NaN/Inf (first at row " + std::to_string(k / cols) +
                  ", column " + std::to_string(k % cols) + ": " + Describe(p[k]) + ")");
      }
    }
    return p;
  }

  bool OptionalBool(const Napi::Object& obj, const char* key, bool fallback) const {
    if (!obj.Has(key)) return fallback;
    const Napi::Value v = obj.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsBoolean()) {
      Throw(env_, kBadArgument, std::string(fn_) + ": options." + key + " must be a boolean", true);
    }
    return v.As<Napi::Boolean>().Value();
  }

  Napi::Object Options(size_t i) const {
    const Napi::Value v = info_[i];
    if (!v.IsObject()) Throw(env_, kBadArgument, std::string(fn_) + ": options must be an object", true);
    return v.As<Napi::Object>();
  }

  static std::string Describe(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
  }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
};

// Turns a kernel status into a thrown JS error (or nothing on success).
void Check(const Args& args, const rw::Result& r) {
  const std::string fn = args.fn();
  switch (r.status) {
    case rw::Status::Ok:
      return;
    case rw::Status::NotPositiveDefinite:
      Throw(args.env(), kBadInput,
            fn + ": the matrix is not positive definite (Cholesky factorisation failed); if it is a Gram or "
                 "covariance matrix that is only positive semi-definite, regularise it first, e.g. add "
                 "ε·(trace/n)·I with ε ≈ 1e-8");
    case rw::Status::Singular:
      Throw(args.env(), kBadInput,
            fn + ": the triangular matrix is singular (zero on the diagonal at row " + std::to_string(r.index) + ")");
    case rw::Status::Overflow:
      Throw(args.env(), kBadInput,
            fn + ": the solution overflowed to Inf/NaN: the triangular matrix is singular to working precision");
    case rw::Status::NoConvergence:
      Throw(args.env(), kInternal, fn + ": the Eigen solver did not converge");
    case rw::Status::OutOfMemory:
      Throw(args.env(), kInternal, fn + ": out of memory");
    case rw::Status::Failed:
    default:
      Throw(args.env(), kInternal, fn + ": " + (r.what ? r.what : "the Eigen kernel failed"));
  }
}

const rw::Kernels& KernelsOf(const Napi::CallbackInfo& info) {
  return *static_cast<const rw::Kernels*>(info.Data());
}

Napi::Float64Array NewArray(Napi::Env env, int64_t length) {
  return Napi::Float64Array::New(env, static_cast<size_t>(length));
}

// eigh(a, n) → { values, vectors }
Napi::Value Eigh(const Napi::CallbackInfo& info) {
  Args args(info, "eigh", 2);
  const int64_t n = args.Dim(1, "n");
  const double* a = args.Matrix(0, "a", n, n);
  Napi::Float64Array values = NewArray(info.Env(), n);
  Napi::Float64Array vectors = NewArray(info.Env(), n * n);
  Check(args, KernelsOf(info).eigh(a, n, values.Data(), vectors.Data()));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("values", values);
  out.Set("vectors", vectors);
  return out;
}

// svd(a, m, n) → { u, s, vt }
Napi::Value Svd(const Napi::CallbackInfo& info) {
  Args args(info, "svd", 3);
  const int64_t m = args.Dim(1, "m");
  const int64_t n = args.Dim(2, "n");
  const double* a = args.Matrix(0, "a", m, n);
  const int64_t k = m < n ? m : n;
  Napi::Float64Array u = NewArray(info.Env(), m * k);
  Napi::Float64Array s = NewArray(info.Env(), k);
  Napi::Float64Array vt = NewArray(info.Env(), k * n);
  Check(args, KernelsOf(info).svd(a, m, n, u.Data(), s.Data(), vt.Data()));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("u", u);
  out.Set("s", s);
  out.Set("vt", vt);
  return out;
}

// qr(a, m, n) → { q, r }
Napi::Value Qr(const Napi::CallbackInfo& info) {
  Args args(info, "qr", 3);
  const int64_t m = args.Dim(1, "m");
  const int64_t n = args.Dim(2, "n");
  const double* a = args.Matrix(0, "a", m, n);
  const int64_t k = m < n ? m : n;
  Napi::Float64Array q = NewArray(info.Env(), m * k);
  Napi::Float64Array r = NewArray(info.Env(), k * n);
  Check(args, KernelsOf(info).qr(a, m, n, q.Data(), r.Data()));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("q", q);
  out.Set("r", r);
  return out;
}

// cholesky(a, n) → l
Napi::Value Cholesky(const Napi::CallbackInfo& info) {
  Args args(info, "cholesky", 2);
  const int64_t n = args.Dim(1, "n");
  const double* a = args.Matrix(0, "a", n, n);
  Napi::Float64Array l = NewArray(info.Env(), n * n);
  Check(args, KernelsOf(info).cholesky(a, n, l.Data()));
  return l;
}

// solveTriangular(t, n, b, cols, { lower, transpose? }) → x
Napi::Value SolveTriangular(const Napi::CallbackInfo& info) {
  Args args(info, "solveTriangular", 5);
  const int64_t n = args.Dim(1, "n");
  const int64_t cols = args.Dim(3, "cols");
  const Napi::Object opts = args.Options(4);
  if (!opts.Has("lower") || !opts.Get("lower").IsBoolean()) {
    Throw(info.Env(), kBadArgument, "solveTriangular: options.lower must be a boolean", true);
  }
  const bool lower = opts.Get("lower").As<Napi::Boolean>().Value();
  const bool transpose = args.OptionalBool(opts, "transpose", false);
  const double* t = args.Matrix(0, "t", n, n);
  const double* b = args.Matrix(2, "b", n, cols);
  Napi::Float64Array x = NewArray(info.Env(), n * cols);
  Check(args, KernelsOf(info).solve_triangular(t, n, b, cols, lower, transpose, x.Data()));
  return x;
}

// matmul(a, m, k, b, n) → c
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Args args(info, "matmul", 5);
  const int64_t m = args.Dim(1, "m");
  const int64_t k = args.Dim(2, "k");
  const int64_t n = args.Dim(4, "n");
  const double* a = args.Matrix(0, "a", m, k);
  const double* b = args.Matrix(3, "b", k, n);
  Napi::Float64Array c = NewArray(info.Env(), m * n);
  Check(args, KernelsOf(info).matmul(a, m, k, b, n, c.Data()));
  return c;
}

bool CpuHasAvx2() {
#if defined(RW_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // GCC/Clang's cpu model also checks that the OS saves the YMM registers (XGETBV) for the AVX features.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// The functions of one kernel table, as an object.
Napi::Object Functions(Napi::Env env, const rw::Kernels& k) {
  void* data = const_cast<rw::Kernels*>(&k);
  Napi::Object o = Napi::Object::New(env);
  o.Set("eigh", Napi::Function::New(env, Eigh, "eigh", data));
  o.Set("svd", Napi::Function::New(env, Svd, "svd", data));
  o.Set("qr", Napi::Function::New(env, Qr, "qr", data));
  o.Set("cholesky", Napi::Function::New(env, Cholesky, "cholesky", data));
  o.Set("solveTriangular", Napi::Function::New(env, SolveTriangular, "solveTriangular", data));
  o.Set("matmul", Napi::Function::New(env, Matmul, "matmul", data));
  o.Set("variant", Napi::String::New(env, k.variant));
  o.Set("eigenVersion", Napi::String::New(env, k.eigen_version));
  o.Set("simd", Napi::String::New(env, k.simd));
  return o;
}

// exports: the chosen table's functions and info at the top level, plus `variants` with every table this
// CPU can run (for tests and benchmarks that compare them), and `cpuHasAvx2`.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const bool has_avx2 = CpuHasAvx2();
  const char* forced = std::getenv("RANKWISE_NATIVE_VARIANT");
  const bool want_baseline = forced != nullptr && std::strcmp(forced, "baseline") == 0;

  const rw::Kernels* chosen = &rw_baseline::kernels();
  Napi::Object variants = Napi::Object::New(env);
  variants.Set("baseline", Functions(env, rw_baseline::kernels()));
#if defined(RW_HAVE_AVX2)
  if (has_avx2) {
    variants.Set("avx2", Functions(env, rw_avx2::kernels()));
    if (!want_baseline) chosen = &rw_avx2::kernels();
  }
#endif

  Napi::Object top = Functions(env, *chosen);
  for (const char* key : {"eigh", "svd", "qr", "cholesky", "solveTriangular", "matmul", "variant", "eigenVersion",
                          "simd"}) {
    exports.Set(key, top.Get(key));
  }
  exports.Set("variants", variants);
  exports.Set("cpuHasAvx2", Napi::Boolean::New(env, has_avx2));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(rankwise_native, Init)
