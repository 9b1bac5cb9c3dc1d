// The step's arithmetic: float32 loops the compiler vectorises, with no
// libm in them.  Built with -ffp-contract=off and no fast-math, each output
// element is computed by the same operations in the same order on every
// machine and at every vector width, so the step gives the same bits on any
// CPU (x86-64 SSE2 or AVX2, ARM).
#pragma once

#include <cstdint>
#include <cstring>

#include "cadenza/weights.hpp"

namespace cadenza::kernels {

// y[n] += sum_k v[k] * m[k][n] over k in order, for one or two input rows
// sharing the weights (read once).  y holds m.padded_cols() floats.  A zero
// input element is skipped by the one-row kernel: adding its +-0 products
// would not change y.
void accumulate(const Panels& m, const float* v0, float* y0);
void accumulate2(const Panels& m, const float* v0, const float* v1, float* y0, float* y1);

// Whether the two kernels above may take their AVX-512 build (the default:
// yes, where the CPU has it); returns whether it has it.  For tests: each
// build gives the same bits.  Not for use while a step runs.
bool use_avx512(bool wanted);

void sigmoid_inplace(float* x, int n);
void hard_sigmoid_inplace(float* x, int n, float slope, float offset);
void tanh_inplace(float* x, int n);
// The LSTM cell's state update from activated gates z (i, f, g, o): c and h in place.
void lstm_update(const float* z, int u, float* c, float* h, float* scratch);
// x[j] = e^(x[j] - shift)
void exp_shifted(float* x, int n, float shift);
// The largest of x[0..n), n >= 1: the sequential loop's value, taken eight
// lanes at a time (a maximum rounds nothing).
float max_of(const float* x, int n);

// e^x for x in float range, to about 2 ulp: Cody-Waite reduction and a
// degree-6 polynomial, with 2^n built in the exponent bits.  Branch-free.
inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifted = x * kLog2e + kRound;
  const float n = shifted - kRound;
  // Unsigned arithmetic: the same bits for every finite x (n + 127 is 1..254),
  // and no undefined shift of a negative value when x is NaN (a corrupt file's
  // weights can make it one; the fuzzer found that).
  std::uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const std::uint32_t exponent = (bits - 0x4B400000u + 127u) << 23;
  float scale;
  std::memcpy(&scale, &exponent, sizeof scale);
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// tanh to a few ulp: an odd polynomial near zero (where 1 - e^-2x would
// cancel), 1 - 2 / (e^2|x| + 1) with the sign elsewhere; both computed and
// one selected, so the loop stays branch-free.
inline float tanh_approx(float x) {
  const float a = x < 0.0f ? -x : x;
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  const float large = 1.0f - 2.0f / (exp_approx(2.0f * a) + 1.0f);
  const float signed_large = x < 0.0f ? -large : large;
  return a < 0.625f ? small : signed_large;
}

}  // namespace cadenza::kernels
