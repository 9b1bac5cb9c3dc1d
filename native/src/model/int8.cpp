#include "int8.hpp"

#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(CADENZA_NO_CLONES)
#include <cpuid.h>
#include <immintrin.h>
#define CADENZA_INT8_AVX2 1
#endif

namespace cadenza::int8 {

namespace {

// Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22
// to an integer, half to even (the default rounding mode), as cvtps2dq
// does; every value rounded here has been clamped to -255..255 first.
constexpr float kRound = 12582912.0f;

inline float round_even(float v) { return (v + kRound) - kRound; }

// NaN (a corrupt file's weights can produce one) goes to `low`: the integer
// conversions after these clamps are then always defined.
inline float clamp(float v, float low, float high) {
  v = v > low ? v : low;
  return v < high ? v : high;
}

}  // namespace

void quantize(const float* __restrict x, int n, Quant q, std::uint8_t* __restrict out) {
  const float low = static_cast<float>(-q.zero_point);
  const float high = static_cast<float>(255 - q.zero_point);
  for (int j = 0; j < n; ++j) {
    const float v = round_even(clamp(x[j] / q.scale, low, high));
    out[j] = static_cast<std::uint8_t>(static_cast<std::int32_t>(v) + q.zero_point);
  }
}

// vpmaddubsw's pair: two uint8 x int8 products, each within int16, their sum
// saturated to int16.
inline std::int32_t pair(std::int32_t a0, std::int32_t w0, std::int32_t a1, std::int32_t w1) {
  std::int32_t t = a0 * w0 + a1 * w1;
  t = t < 32767 ? t : 32767;
  return t > -32768 ? t : -32768;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(CADENZA_NO_CLONES)
#define CADENZA_INT8_CLONES __attribute__((target_clones("avx2", "default")))
// The activations' fused multiply-adds are std::fma, exact everywhere: one
// instruction where the CPU has FMA, libm's (correctly rounded) elsewhere.
#define CADENZA_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define CADENZA_INT8_CLONES
#define CADENZA_FMA_CLONES
#endif

// The range of a row or two: min and max are exact, so eight lanes taken
// together give the sequential loop's bits (a NaN is passed over in both; -0
// never replaces the starting +0, which is not above or below it).
namespace {
typedef float lanes8 __attribute__((vector_size(32)));

CADENZA_INT8_CLONES
void widen_range(const float* __restrict x, int n, float& low, float& high) {
  lanes8 lo = {}, hi = {};
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    lanes8 v;
    std::memcpy(&v, x + j, sizeof v);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  for (int k = 0; k < 8; ++k) {
    low = lo[k] < low ? lo[k] : low;
    high = hi[k] > high ? hi[k] : high;
  }
  for (; j < n; ++j) {
    low = x[j] < low ? x[j] : low;
    high = x[j] > high ? x[j] : high;
  }
}
}  // namespace

Quant choose(const float* x0, const float* x1, int n) {
  float low = 0.0f, high = 0.0f;  // the range always includes zero
  widen_range(x0, n, low, high);
  if (x1 != nullptr) widen_range(x1, n, low, high);
  Quant q;
  q.scale = high == low ? 1.0f : (high - low) / 255.0f;
  const float zero = clamp(0.0f - low / q.scale, 0.0f, 255.0f);
  q.zero_point = static_cast<std::int32_t>(round_even(zero));
  return q;
}

// The portable kernel: row-major weights, the pairs (saturated or not, as
// `rule` says), then the zero point's share.
void matmul_portable(const QuantMatrix& m, const std::uint8_t* __restrict a, std::int32_t zp,
                     std::int32_t* __restrict acc, Products rule) {
  const int rows = m.rows, cols = m.cols;
  const std::int8_t* w = m.data.data();
  const bool saturate = rule == Products::SaturatingPairs;
  for (int j = 0; j < cols; ++j) acc[j] = -zp * m.colsum[j];
  int k = 0;
  for (; k + 1 < rows; k += 2) {
    const std::int32_t a0 = a[k], a1 = a[k + 1];
    if (a0 == 0 && a1 == 0) continue;  // the pair adds 0 (ReLU's zeros, often)
    const std::int8_t* w0 = w + static_cast<std::size_t>(k) * cols;
    const std::int8_t* w1 = w0 + cols;
    if (saturate) {
      for (int j = 0; j < cols; ++j) acc[j] += pair(a0, w0[j], a1, w1[j]);
    } else {
      for (int j = 0; j < cols; ++j) acc[j] += a0 * w0[j] + a1 * w1[j];
    }
  }
  if (k < rows) {  // an odd last k pairs with zero: its product alone, never saturated
    const std::int32_t a0 = a[k];
    const std::int8_t* w0 = w + static_cast<std::size_t>(k) * cols;
    for (int j = 0; j < cols; ++j) acc[j] += a0 * w0[j];
  }
}

namespace {

#ifdef CADENZA_INT8_AVX2
// The 256-bit kernels: kPanel / 8 accumulators of eight columns per row stay
// in registers over all the rows, rows_count rows share each weight load, and
// ADD_GROUP(sum, x, w) adds one group's products (the four input bytes x,
// broadcast, against each column's four weight bytes w) by the rule:
// - saturating pairs, MLAS's own arithmetic: vpmaddubsw multiplies and adds
//   them in saturating int16 pairs (0-1, 2-3), vpmaddwd by ones adds the two
//   pairs exactly in int32 (add_pairs);
// - exact, on CPUs with VNNI: vpdpbusd adds the four products to the int32
//   lane at once, with no int16 step (its sum cannot overflow here: 4 * 255 *
//   128 per group).
// One body, stamped out per ISA: each function is built for its own only.
#define CADENZA_INT8_KERNEL_256(NAME, TARGET, ADD_GROUP)                                            \
  template <int kRowsAtOnce>                                                                       \
  __attribute__((target(TARGET))) void NAME(const QuantMatrix& m, const std::uint8_t* const* a,   \
                                            const std::int32_t* zp, std::int32_t* const* acc) {    \
    constexpr int kVectors = kPanel / 8;                                                           \
    for (int p = 0; p < m.panels; ++p) {                                                           \
      __m256i sum[kRowsAtOnce][kVectors];                                                          \
      for (int r = 0; r < kRowsAtOnce; ++r) {                                                      \
        for (int v = 0; v < kVectors; ++v) sum[r][v] = _mm256_setzero_si256();                    \
      }                                                                                            \
      const std::int8_t* w = m.packed.data() + static_cast<std::size_t>(p) * m.groups * kPanel * 4; \
      for (int g = 0; g < m.groups; ++g, w += kPanel * 4) {                                        \
        __m256i x[kRowsAtOnce];                                                                    \
        for (int r = 0; r < kRowsAtOnce; ++r) {                                                    \
          std::int32_t four;                                                                       \
          std::memcpy(&four, a[r] + 4 * g, sizeof four);                                           \
          x[r] = _mm256_set1_epi32(four);                                                          \
        }                                                                                          \
        for (int v = 0; v < kVectors; ++v) {                                                       \
          const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * v));    \
          for (int r = 0; r < kRowsAtOnce; ++r) sum[r][v] = ADD_GROUP(sum[r][v], x[r], wv);        \
        }                                                                                          \
      }                                                                                            \
      const int first = p * kPanel;                                                                \
      const int count = m.cols - first < kPanel ? m.cols - first : kPanel;                        \
      for (int r = 0; r < kRowsAtOnce; ++r) {                                                      \
        alignas(32) std::int32_t out[kPanel];                                                      \
        for (int v = 0; v < kVectors; ++v) {                                                       \
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + 8 * v), sum[r][v]);                  \
        }                                                                                          \
        for (int j = 0; j < count; ++j) acc[r][first + j] = out[j] - zp[r] * m.colsum[first + j]; \
      }                                                                                            \
    }                                                                                              \
  }

__attribute__((target("avx2"), always_inline)) inline __m256i add_pairs(__m256i sum, __m256i x,
                                                                        __m256i w) {
  return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
}

CADENZA_INT8_KERNEL_256(matmul_avx2, "avx2", add_pairs)
CADENZA_INT8_KERNEL_256(matmul_avxvnni, "avx2,avxvnni", _mm256_dpbusd_avx_epi32)
#undef CADENZA_INT8_KERNEL_256

// AVX512-VNNI's on whole 512-bit registers: a panel's 32 columns in two
// accumulators per row, half the instructions of the 256-bit kernel.  The
// same exact sums (integer addition: any order gives the same integers).
static_assert(kPanel == 32, "two 512-bit accumulators per panel row");

template <int kRowsAtOnce>
__attribute__((target("avx512f,avx512vnni"))) void matmul_avx512vnni(const QuantMatrix& m,
                                                                      const std::uint8_t* const* a,
                                                                      const std::int32_t* zp,
                                                                      std::int32_t* const* acc) {
  for (int p = 0; p < m.panels; ++p) {
    __m512i sum[kRowsAtOnce][2];
    for (int r = 0; r < kRowsAtOnce; ++r) sum[r][0] = sum[r][1] = _mm512_setzero_si512();
    const std::int8_t* w = m.packed.data() + static_cast<std::size_t>(p) * m.groups * kPanel * 4;
    for (int g = 0; g < m.groups; ++g, w += kPanel * 4) {
      const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
      for (int r = 0; r < kRowsAtOnce; ++r) {
        std::int32_t four;
        std::memcpy(&four, a[r] + 4 * g, sizeof four);
        const __m512i x = _mm512_set1_epi32(four);
        sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], x, w0);
        sum[r][1] = _mm512_dpbusd_epi32(sum[r][1], x, w1);
      }
    }
    const int first = p * kPanel;
    const int count = m.cols - first < kPanel ? m.cols - first : kPanel;
    for (int r = 0; r < kRowsAtOnce; ++r) {
      alignas(64) std::int32_t out[kPanel];
      _mm512_store_si512(out, sum[r][0]);
      _mm512_store_si512(out + 16, sum[r][1]);
      for (int j = 0; j < count; ++j) acc[r][first + j] = out[j] - zp[r] * m.colsum[first + j];
    }
  }
}

// What this CPU offers, read once with cpuid (and xgetbv: what the OS saves).
struct CpuFeatures {
  bool avx2 = false;           // AVX2 and FMA, with AVX state enabled
  bool avx_vnni = false;       // AVX-VNNI
  bool avx512_core = false;    // AVX512F/BW/DQ/VL, with AVX512 state enabled
  bool avx512_vnni = false;
  bool amx_int8 = false;       // AMX-TILE and AMX-INT8, with tile state enabled
};

CpuFeatures read_cpu() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave_avx = (c & 0x18000000u) == 0x18000000u;
  const bool fma = (c & 0x1000u) != 0;
  if (!osxsave_avx) return f;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const std::uint64_t xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
  if ((xcr0 & 0x6) != 0x6 || __get_cpuid_max(0, nullptr) < 7) return f;
  unsigned b7, c7, d7, a71, b71, c71, d71;
  __cpuid_count(7, 0, a, b7, c7, d7);
  __cpuid_count(7, 1, a71, b71, c71, d71);
  f.avx2 = fma && (b7 & 0x20u) != 0;
  f.avx_vnni = f.avx2 && (a71 & 0x10u) != 0;
  f.avx512_core = f.avx2 && (b7 & 0x10000u) != 0 && (xcr0 & 0xE0) == 0xE0 &&
                  (b7 & 0xC0020000u) == 0xC0020000u;
  f.avx512_vnni = f.avx512_core && (c7 & 0x800u) != 0;
  const std::uint64_t tiles = (1ull << 17) | (1ull << 18);
  f.amx_int8 = f.avx2 && (d7 & (1u << 24)) != 0 && (d7 & (1u << 25)) != 0 && (xcr0 & tiles) == tiles;
  return f;
}

const CpuFeatures kCpu = read_cpu();

// MLAS's choice of uint8 x int8 kernel, in its order: the AVX2 kernel
// (vpmaddubsw: saturating pairs); AVX-VNNI's (exact); then, where AVX512
// core is usable, its vpmaddubsw kernel (saturating pairs again) unless
// AVX512-VNNI (exact); AMX last (exact).  Without AVX2, MLAS's SSE kernels
// widen to int16 and multiply-add pairs in int32: exact.
Products mlas_products() {
  if (!kCpu.avx2) return Products::Exact;
  Products rule = Products::SaturatingPairs;
  if (kCpu.avx_vnni) rule = Products::Exact;
  if (kCpu.avx512_core) rule = kCpu.avx512_vnni ? Products::Exact : Products::SaturatingPairs;
  if (kCpu.amx_int8) rule = Products::Exact;
  return rule;
}

const bool kHaveAvx2 = kCpu.avx2;
#endif

}  // namespace

namespace {

Products ort_rule() {
#ifdef CADENZA_INT8_AVX2
  return mlas_products();
#else
  return Products::Exact;  // MLAS's kernels elsewhere (NEON, SSE) widen before they multiply
#endif
}

Products rule_in_use = ort_rule();

// rows (one or two) of the product with the kernel for the rule in use.
template <int kRowsAtOnce>
void product_rows(const QuantMatrix& m, const std::uint8_t* const* a, const std::int32_t* zp,
                  std::int32_t* const* acc) {
#ifdef CADENZA_INT8_AVX2
  if (!m.packed.empty()) {
    if (rule_in_use == Products::SaturatingPairs && kHaveAvx2) {
      matmul_avx2<kRowsAtOnce>(m, a, zp, acc);
      return;
    }
    if (rule_in_use == Products::Exact && kCpu.avx512_vnni) {
      matmul_avx512vnni<kRowsAtOnce>(m, a, zp, acc);
      return;
    }
    if (rule_in_use == Products::Exact && kCpu.avx_vnni) {
      matmul_avxvnni<kRowsAtOnce>(m, a, zp, acc);
      return;
    }
  }
#endif
  for (int r = 0; r < kRowsAtOnce; ++r) matmul_portable(m, a[r], zp[r], acc[r], rule_in_use);
}

}  // namespace

Products onnxruntime_products() { return ort_rule(); }
Products products() { return rule_in_use; }
void use_products(Products rule) { rule_in_use = rule; }

void matmul(const QuantMatrix& m, const std::uint8_t* a, std::int32_t zp, std::int32_t* acc) {
  const std::uint8_t* rows[1] = {a};
  std::int32_t* outs[1] = {acc};
  product_rows<1>(m, rows, &zp, outs);
}

void matmul2(const QuantMatrix& m, const std::uint8_t* a0, std::int32_t zp0, const std::uint8_t* a1,
             std::int32_t zp1, std::int32_t* acc0, std::int32_t* acc1) {
  const std::uint8_t* rows[2] = {a0, a1};
  const std::int32_t zps[2] = {zp0, zp1};
  std::int32_t* outs[2] = {acc0, acc1};
  product_rows<2>(m, rows, zps, outs);
}

CADENZA_INT8_CLONES
void dequantize(const std::int32_t* __restrict acc, int n, float scale, float* __restrict out) {
  for (int j = 0; j < n; ++j) out[j] = static_cast<float>(acc[j]) * scale;
}

namespace {

// MLAS's logistic constants (Eigen's): a degree-9 odd numerator and a
// degree-10 even denominator on x clamped to +-18.
inline float sigmoid_one(float x) {
  x = x < -18.0f ? -18.0f : x;
  x = x > 18.0f ? 18.0f : x;
  const float s = x * x;
  float p = std::fma(s, 4.37031012579801e-11f, 1.15627324459942e-07f);
  p = std::fma(s, p, 6.08574864600143e-05f);
  p = std::fma(s, p, 8.51377133304701e-03f);
  p = std::fma(s, p, 2.48287947061529e-01f);
  float q = std::fma(s, 6.10247389755681e-13f, 5.76102136993427e-09f);
  q = std::fma(s, q, 6.29106785017040e-06f);
  q = std::fma(s, q, 1.70198817374094e-03f);
  q = std::fma(s, q, 1.16817656904453e-01f);
  q = std::fma(s, q, 9.93151921023180e-01f);
  const float r = (x * p) / q + 0.5f;
  return r > 0.0f ? r : 0.0f;  // the FMA3 kernel clamps below only
}

// MLAS's tanh constants (Eigen's): degree 13 over degree 6 on x clamped to +-9.
inline float tanh_one(float x) {
  x = x < -9.0f ? -9.0f : x;
  x = x > 9.0f ? 9.0f : x;
  const float s = x * x;
  float p = std::fma(s, -2.76076847742355e-16f, 2.00018790482477e-13f);
  p = std::fma(s, p, -8.60467152213735e-11f);
  p = std::fma(s, p, 5.12229709037114e-08f);
  p = std::fma(s, p, 1.48572235717979e-05f);
  p = std::fma(s, p, 6.37261928875436e-04f);
  p = std::fma(s, p, 4.89352455891786e-03f);
  float q = std::fma(s, 1.19825839466702e-06f, 1.18534705686654e-04f);
  q = std::fma(s, q, 2.26843463243900e-03f);
  q = std::fma(s, q, 4.89352518554385e-03f);
  return (x * p) / q;
}

}  // namespace

CADENZA_FMA_CLONES
void sigmoid_inplace(float* __restrict x, int n) {
  for (int j = 0; j < n; ++j) x[j] = sigmoid_one(x[j]);
}

CADENZA_FMA_CLONES
void tanh_inplace(float* __restrict x, int n) {
  for (int j = 0; j < n; ++j) x[j] = tanh_one(x[j]);
}

CADENZA_FMA_CLONES
void lstm_update(const float* __restrict z, int u, float* __restrict c, float* __restrict h,
                 float* __restrict scratch) {
  // The graph's order: mul = f * c, mul_1 = i * g, c = mul + mul_1 (no fusing:
  // -ffp-contract=off), h = o * tanh(c).
  for (int j = 0; j < u; ++j) c[j] = z[u + j] * c[j] + z[j] * z[2 * u + j];
  for (int j = 0; j < u; ++j) scratch[j] = tanh_one(c[j]);
  for (int j = 0; j < u; ++j) h[j] = z[3 * u + j] * scratch[j];
}

void prepare(QuantMatrix& m) {
  m.colsum.assign(m.cols, 0);
  for (int k = 0; k < m.rows; ++k) {
    for (int j = 0; j < m.cols; ++j) m.colsum[j] += m.data[static_cast<std::size_t>(k) * m.cols + j];
  }
  m.groups = padded_rows(m.rows) / 4;
  m.panels = padded(m.cols) / kPanel;
  m.packed.assign(static_cast<std::size_t>(m.panels) * m.groups * kPanel * 4, 0);
  for (int k = 0; k < m.rows; ++k) {
    for (int j = 0; j < m.cols; ++j) {
      const std::size_t at =
          ((static_cast<std::size_t>(j / kPanel) * m.groups + k / 4) * kPanel + j % kPanel) * 4 + k % 4;
      m.packed[at] = m.data[static_cast<std::size_t>(k) * m.cols + j];
    }
  }
}

}  // namespace cadenza::int8
