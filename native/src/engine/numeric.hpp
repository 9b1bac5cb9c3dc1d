// numpy's float64 arithmetic where a draw depends on it: np.sum's pairwise
// summation, searchsorted.  Elementwise operations are IEEE and need nothing.
#pragma once
#include <cstddef>

// The engine's elementwise loops and lane-wise sums: built for AVX2 too on
// x86-64 (GCC, ELF), picked at load.  Every lane does what the scalar loop
// does (no FMA: -ffp-contract=off), so the bits are the same either way.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(CADENZA_NO_CLONES)
#define CADENZA_ENGINE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CADENZA_ENGINE_CLONES
#endif

namespace cadenza::eng {

// np.add.reduce over a contiguous float64 array (8 accumulators, blocks of 128).
double pairwise_sum(const double* a, std::ptrdiff_t n);

// pairwise_sum for exactly 12 terms (a row of pitch classes), inlined: the
// same additions in the same order (8 accumulators, then the 4 left over).
inline double pairwise_sum12(const double* p) {
  double res = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  res += p[8];
  res += p[9];
  res += p[10];
  res += p[11];
  return res;
}

// The largest of n >= 1 values, none NaN (np.max): exact, so taken four
// lanes at a time.
double max_of(const double* a, std::ptrdiff_t n);

// key_mask.weigh: probs * weights into out, numpy's pairwise sum of them,
// then each divided by it.  Returns out, or probs itself (untouched) when
// the weighed total is not positive.
const double* weigh(const double* probs, const double* weights, double* out, std::ptrdiff_t n);

// a[i] = a[i] / divisor, and out[i] = a[i] * b[i]: elementwise IEEE
// operations, the same bits at any vector width.
void divide_all(double* a, std::ptrdiff_t n, double divisor);
void multiply(const double* a, const double* b, double* out, std::ptrdiff_t n);

// np.searchsorted(sorted, value, side='left' | 'right').
std::ptrdiff_t search_left(const double* sorted, std::ptrdiff_t n, double value);
std::ptrdiff_t search_right(const double* sorted, std::ptrdiff_t n, double value);

// CPython's float ** float: libm pow, never folded into a multiplication.
double py_pow(double x, double y);

// Python's round() of a float to an int: halves to even.
long long py_round(double x);

}  // namespace cadenza::eng
