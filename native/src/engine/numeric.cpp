#include "numeric.hpp"

#include <cmath>

namespace cadenza::eng {

namespace {
constexpr std::ptrdiff_t PW_BLOCK = 128;  // numpy's PW_BLOCKSIZE
}

double pairwise_sum(const double* a, std::ptrdiff_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::ptrdiff_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= PW_BLOCK) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    std::ptrdiff_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::ptrdiff_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

std::ptrdiff_t search_left(const double* sorted, std::ptrdiff_t n, double value) {
  std::ptrdiff_t lo = 0, hi = n;
  while (lo < hi) {
    std::ptrdiff_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

std::ptrdiff_t search_right(const double* sorted, std::ptrdiff_t n, double value) {
  std::ptrdiff_t lo = 0, hi = n;
  while (lo < hi) {
    std::ptrdiff_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] <= value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

namespace {
// Through a volatile pointer: the compiler may not turn pow(x, 2.0) into x * x,
// which can round differently from the libm call CPython makes.
double (*volatile pow_fn)(double, double) = static_cast<double (*)(double, double)>(std::pow);
}

double py_pow(double x, double y) { return pow_fn(x, y); }

long long py_round(double x) {
  // nearbyint rounds halves to even in the default rounding mode, as round() does.
  return static_cast<long long>(std::nearbyint(x));
}

}  // namespace cadenza::eng
