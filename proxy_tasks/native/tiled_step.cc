// The native step of optevo.proxy_tasks.native (its docstring states the invariants): one
// optimizer step of an encoded program (optevo.dsl.interpreter.Code) for every seed, run tile
// by tile over the parameters, so that a statement's operands and result stay in the L1
// cache and only w, g, m, v and the update cross memory, as in a hand-written step.
//
// Elementwise programs only (no reduction: a scalar row reads scalars alone), and only the
// ops of the opcode table below (native.OPS); the engine runs any other program in the
// interpreter. The divergence
// rule as the interpreter's check_finite: a seed's update is NaN (so the seed diverges) when
// one of its statements computed a value that is not finite or read an input (w, g) that is
// not; the interpreter finds the same seeds by propagating NaN per coordinate instead.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

enum Code : int32_t {
  NOP = 0, MOV, ADD, SUB, MUL, DIV, SQRT, SQUARE, ABS, NEG, SIGN, INTERP, INTERP_C,
};
// row columns (optevo.dsl.interpreter): op, 4 args, 4 kinds, dst_t, dst_s
constexpr int ROW = 11, OPC = 0, ARG = 1, KIND = 5, DST_T = 9, DST_S = 10;
constexpr int SCALAR_ARG = 1;
constexpr int64_t TILE = 512;
constexpr float EPS = 1e-8f;

template <int OP>
static inline float apply(float a, float b, float c, float d) {
  switch (OP) {
    case MOV: return a;
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return a / (b + EPS);
    case SQRT: return std::sqrt(std::fabs(a));
    case SQUARE: return a * a;
    case ABS: return std::fabs(a);
    case NEG: return -a;
    case SIGN: return a > 0.f ? 1.f : (a < 0.f ? -1.f : a);  // jnp.sign: NaN, -0 kept
    case INTERP: return (1.0f - c) * a + c * b;
    case INTERP_C: return d * a + c * b;  // d: the constant complement 1 - c
    default: return 0.f;
  }
}
static constexpr int arity_of(int op) {
  return (op == MOV || op == SQRT || op == SQUARE || op == ABS || op == NEG || op == SIGN) ? 1
         : op == INTERP ? 3 : op == INTERP_C ? 4 : 2;
}

// 1 where x is not finite (all exponent bits set): an integer test, so the OR over a tile
// vectorizes
static inline uint32_t not_finite(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u & 0x7f800000u) == 0x7f800000u;
}

static uint32_t any_not_finite(const float* __restrict x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= not_finite(x[i]);
  return bad;
}

// One tile-wide statement: out[i] = op(x0[i], x1[i], ...), operand j the scalar sv[j] where
// bit j of MASK is set. Returns 1 if a result is not finite. (The interpreter sets a result
// to NaN where an operand is not finite and checks the outputs; for an elementwise program
// both make a seed diverge exactly when a statement computed a value that is not finite.)
template <int OP, int MASK>
static uint32_t run_row(float* __restrict out, const float* const* x, const float* sv,
                        int64_t n) {
  constexpr int K = arity_of(OP);
  const float* __restrict x0 = x[0];
  const float* __restrict x1 = K > 1 ? x[1] : x[0];
  const float* __restrict x2 = K > 2 ? x[2] : x[0];
  const float* __restrict x3 = K > 3 ? x[3] : x[0];
  const float s0 = sv[0], s1 = sv[1], s2 = sv[2], s3 = sv[3];
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    float r = apply<OP>((MASK & 1) ? s0 : x0[i], (MASK & 2) ? s1 : x1[i],
                        (MASK & 4) ? s2 : x2[i], (MASK & 8) ? s3 : x3[i]);
    out[i] = r;
    bad |= not_finite(r);
  }
  return bad;
}

template <int OP>
static uint32_t run_masked(int mask, float* out, const float* const* x, const float* sv,
                           int64_t n) {
  switch (mask & ((1 << arity_of(OP)) - 1)) {
#define M(B) case B: return run_row<OP, B>(out, x, sv, n);
    M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#undef M
    default: return 0;
  }
}

static float apply_scalar(int32_t op, const float* x) {
  switch (op) {
#define CASE(O) case O: return apply<O>(x[0], x[1], x[2], x[3]);
    CASE(MOV) CASE(ADD) CASE(SUB) CASE(MUL) CASE(DIV) CASE(SQRT) CASE(SQUARE) CASE(ABS)
    CASE(NEG) CASE(SIGN) CASE(INTERP) CASE(INTERP_C)
#undef CASE
    default: return 0.f;
  }
}

static uint32_t dispatch_row(int32_t op, int mask, float* out, const float* const* x,
                             const float* sv, int64_t n) {
  switch (op) {
#define CASE(O) case O: return run_masked<O>(mask, out, x, sv, n);
    CASE(MOV) CASE(ADD) CASE(SUB) CASE(MUL) CASE(DIV) CASE(SQRT) CASE(SQUARE) CASE(ABS)
    CASE(NEG) CASE(SIGN) CASE(INTERP) CASE(INTERP_C)
#undef CASE
    default: return 0;
  }
}

ffi::Error TiledStepImpl(ffi::Buffer<ffi::S32> rows, ffi::Buffer<ffi::S32> opmap,
                         ffi::Buffer<ffi::S32> nrows, ffi::Buffer<ffi::S32> outreg,
                         ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> g,
                         ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::F32> T,
                         ffi::Buffer<ffi::F32> S, ffi::ResultBuffer<ffi::F32> T_out,
                         ffi::ResultBuffer<ffi::F32> S_out,
                         ffi::ResultBuffer<ffi::F32> upd) {
  auto tdims = T.dimensions();  // (NT, Ns, P)
  const int64_t NT = tdims[0], Ns = tdims[1], P = tdims[2];
  const int64_t NS = S.dimensions()[0];
  const int32_t n = nrows.typed_data()[0], out_r = outreg.typed_data()[0];
  const int32_t* R = rows.typed_data();
  const int32_t* M = opmap.typed_data();
  float* Tb = T_out->typed_data();  // aliased with T: m, v live in slots 2, 3
  float* Sb = S_out->typed_data();
  if (Tb != T.typed_data()) std::memcpy(Tb, T.typed_data(), NT * Ns * P * sizeof(float));
  if (Sb != S.typed_data()) std::memcpy(Sb, S.typed_data(), NS * Ns * sizeof(float));
  float* U = upd->typed_data();
  bool reads[2] = {false, false};  // does a statement read w (register 0), g (register 1)?
  for (int32_t i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j)
      if (R[i * ROW + KIND + j] != SCALAR_ARG && R[i * ROW + ARG + j] < 2 &&
          M[R[i * ROW + OPC]] >= 0 && j < arity_of(M[R[i * ROW + OPC]]))
        reads[R[i * ROW + ARG + j]] = true;
  static thread_local std::vector<float> local;
  if ((int64_t)local.size() < NT * TILE) local.resize(NT * TILE);
  for (int64_t s = 0; s < Ns; ++s) {
    float* Ss = Sb;  // scalar j of seed s: Sb[j * Ns + s]
    Ss[0 * Ns + s] = lr.typed_data()[s];
    uint32_t bad = 0;  // a statement of this seed computed a value that is not finite
    // scalar rows first (opmap < 0): in an elementwise program they read only scalars
    for (int32_t i = 0; i < n; ++i) {
      const int32_t* r = R + i * ROW;
      int32_t op = M[r[OPC]];
      if (op >= 0) continue;  // tensor row
      op = -op - 1;
      float x[4] = {0, 0, 0, 0};
      for (int j = 0; j < arity_of(op); ++j) x[j] = Ss[r[ARG + j] * Ns + s];
      const float y = apply_scalar(op, x);
      Ss[r[DST_S] * Ns + s] = y;
      bad |= not_finite(y);
    }
    for (int64_t t0 = 0; t0 < P; t0 += TILE) {
      const int64_t len = std::min(TILE, P - t0);
      auto reg = [&](int32_t k) -> float* {
        if (k == 0) return const_cast<float*>(w.typed_data()) + s * P + t0;
        if (k == 1) return const_cast<float*>(g.typed_data()) + s * P + t0;
        if (k == 2 || k == 3) return Tb + (k * Ns + s) * P + t0;
        return local.data() + k * TILE;
      };
      for (int k = 0; k < 2; ++k)
        if (reads[k]) bad |= any_not_finite(reg(k), len);
      for (int32_t i = 0; i < n; ++i) {
        const int32_t* r = R + i * ROW;
        int32_t op = M[r[OPC]];
        if (op < 0) continue;  // scalar row, done above
        if (op == NOP) continue;
        const float* xs[4] = {nullptr, nullptr, nullptr, nullptr};
        float sv[4] = {0, 0, 0, 0};
        int mask = 0;
        for (int j = 0; j < arity_of(op); ++j) {
          if (r[KIND + j] == SCALAR_ARG) {
            sv[j] = Ss[r[ARG + j] * Ns + s];
            xs[j] = sv + j;  // (not read: the mask says scalar)
            mask |= 1 << j;
          } else {
            xs[j] = reg(r[ARG + j]);
          }
        }
        float* out = reg(r[DST_T]);
        bad |= dispatch_row(op, mask, out, xs, sv, len);
      }
      std::memcpy(U + s * P + t0, reg(out_r), len * sizeof(float));
    }
    if (bad)  // the seed diverges, as under the interpreter's check
      for (int64_t e = 0; e < P; ++e) U[s * P + e] = NAN;
  }
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(TiledStep, TiledStepImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
