// numpy's float64 arithmetic where a draw depends on it: np.sum's pairwise
// summation, searchsorted.  Elementwise operations are IEEE and need nothing.
#pragma once
#include <cstddef>

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

// np.searchsorted(sorted, value, side='left' | 'right').
std::ptrdiff_t search_left(const double* sorted, std::ptrdiff_t n, double value);
std::ptrdiff_t search_right(const double* sorted, std::ptrdiff_t n, double value);

// CPython's float ** float: libm pow, never folded into a multiplication.
double py_pow(double x, double y);

// Python's round() of a float to an int: halves to even.
long long py_round(double x);

}  // namespace cadenza::eng
