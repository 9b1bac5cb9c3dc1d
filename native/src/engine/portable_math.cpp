#include "portable_math.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

#include "numeric.hpp"

namespace cadenza::eng {

namespace {

// The constants of cadenza/portable_math.py, with the same values.
constexpr double INV_LN2 = 0x1.71547652b82fep+0;   // 1 / ln 2, rounded
constexpr double LN2_HI = 0x1.62e42p-1;            // ln 2, its significand's low 32 bits cleared
constexpr double LN2_LO = 0x1.fdf473de6af28p-22;   // ln 2 - LN2_HI, rounded
constexpr double EXP_MIN = -708.0;
constexpr double EXP_MAX = 709.0;
// Adding 1.5 * 2**52 rounds a double below 2**51 in magnitude to an integer
// (halves to even, as np.rint does) and leaves that integer in the low bits.
constexpr double ROUNDER = 0x1.8p52;
constexpr uint64_t SIGNIFICAND = 0x000FFFFFFFFFFFFFull;
constexpr uint64_t SQRT2_SIGNIFICAND = 0x6A09E667F3BCDull;
constexpr uint64_t ONE_EXPONENT = 0x3FFull << 52;
constexpr double SMALLEST_NORMAL = 0x1p-1022;
constexpr double SUBNORMAL_SCALE = 0x1p54;
constexpr double TWO_POW_52 = 0x1p52;

// 1/n! for n = 0..13 and 2/(2j+1) for j = 1..9: each a correctly rounded
// quotient of two exact doubles, as Python's 1.0 / factorial(n) is.
constexpr double EXP_TERMS[14] = {
    1.0,          1.0,           1.0 / 2.0,         1.0 / 6.0,          1.0 / 24.0,
    1.0 / 120.0,  1.0 / 720.0,   1.0 / 5040.0,      1.0 / 40320.0,      1.0 / 362880.0,
    1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0};
constexpr double LOG_TERMS[9] = {2.0 / 3.0,  2.0 / 5.0,  2.0 / 7.0,  2.0 / 9.0, 2.0 / 11.0,
                                 2.0 / 13.0, 2.0 / 15.0, 2.0 / 17.0, 2.0 / 19.0};

inline uint64_t bits_of(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

inline double double_of(uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Every lane computes both sides and keeps one by a bit mask.  A `?:` on
// doubles would do, but with trapping math (the default) GCC turns it into
// a branch around the floating-point work, and a loop with branches does
// not vectorise.
inline uint64_t mask_if(bool condition) { return 0 - static_cast<uint64_t>(condition); }

inline double pick(uint64_t mask, double yes, double no) {
  return double_of((bits_of(yes) & mask) | (bits_of(no) & ~mask));
}

}  // namespace

CADENZA_ENGINE_CLONES
void exp_in_place(double* a, std::ptrdiff_t n) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const double x = a[i];
    const double shifted = x * INV_LN2 + ROUNDER;  // two roundings: the product's, then to an integer
    const double k = shifted - ROUNDER;
    const double r = (x - k * LN2_HI) - k * LN2_LO;
    double p = EXP_TERMS[13];
    for (int t = 12; t >= 0; --t) p = p * r + EXP_TERMS[t];
    // 2**k from k's low bits: exact for the k of any x in [EXP_MIN, EXP_MAX).
    const double scale = double_of((bits_of(shifted) + 1023u) << 52);
    const double y = p * scale;
    a[i] = pick(mask_if(x < EXP_MIN), 0.0, pick(mask_if(x >= EXP_MAX), inf, y));
  }
}

CADENZA_ENGINE_CLONES
void log_in_place(double* a, std::ptrdiff_t n) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const double x = a[i];
    const uint64_t subnormal = mask_if(x < SMALLEST_NORMAL);
    const double scaled = pick(subnormal, x * SUBNORMAL_SCALE, x);
    const uint64_t bits = bits_of(scaled);
    const uint64_t significand = bits & SIGNIFICAND;
    const uint64_t halve = static_cast<uint64_t>(significand >= SQRT2_SIGNIFICAND);
    const double m = double_of(significand | (ONE_EXPONENT - (halve << 52)));
    // The biased exponent as a double, exactly: 2**52 plus it, less 2**52.
    const uint64_t biased = ((bits >> 52) & 0x7FFu) + halve;
    const double e = ((double_of(bits_of(TWO_POW_52) | biased) - TWO_POW_52) - 1023.0) -
                     pick(subnormal, 54.0, 0.0);
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    double big_r = LOG_TERMS[8];
    for (int t = 7; t >= 0; --t) big_r = big_r * z + LOG_TERMS[t];
    big_r = big_r * z;
    const double log_m = f - s * (f - big_r);
    double y = e * LN2_HI + (log_m + e * LN2_LO);
    y = pick(mask_if(x == inf), inf, y);
    y = pick(mask_if(x == 0.0), -inf, y);
    a[i] = pick(mask_if(x < 0.0) | mask_if(x != x), nan, y);
  }
}

}  // namespace cadenza::eng
