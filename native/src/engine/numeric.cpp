#include "numeric.hpp"

#include <cmath>
#include <cstring>

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

CADENZA_ENGINE_CLONES
void divide_all(double* a, std::ptrdiff_t n, double divisor) {
  for (std::ptrdiff_t i = 0; i < n; ++i) a[i] = a[i] / divisor;
}

CADENZA_ENGINE_CLONES
void multiply(const double* __restrict a, const double* __restrict b, double* __restrict out,
              std::ptrdiff_t n) {
  for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

const double* weigh(const double* probs, const double* weights, double* out, std::ptrdiff_t n) {
  multiply(probs, weights, out, n);
  const double total = pairwise_sum(out, n);
  if (total <= 0.0) return probs;
  divide_all(out, n, total);
  return out;
}

CADENZA_ENGINE_CLONES
double max_of(const double* a, std::ptrdiff_t n) {
  typedef double lanes4 __attribute__((vector_size(32)));
  double top = a[0];
  std::ptrdiff_t i = 1;
  if (n >= 9) {
    lanes4 m;
    std::memcpy(&m, a + 1, sizeof m);
    for (i = 5; i + 4 <= n; i += 4) {
      lanes4 v;
      std::memcpy(&v, a + i, sizeof v);
      m = v > m ? v : m;
    }
    for (int k = 0; k < 4; ++k) top = m[k] > top ? m[k] : top;
  }
  for (; i < n; ++i) top = a[i] > top ? a[i] : top;
  return top;
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
