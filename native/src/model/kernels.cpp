#include "kernels.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cadenza::kernels {
// The vectors never cross a call boundary that is not inlined, so the
// ABI note about returning them without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

// A panel's kPanel (32) outputs per row are held in registers over the
// whole sum (vectors of eight floats, the compiler's generic vectors: SSE
// pairs on plain x86-64, AVX where the CPU has it, NEON on ARM), its weights
// read in one sequential sweep; eight independent accumulators for two rows
// keep the adder busy.  Each element still adds its terms in order of k,
// whatever the vector width or panel size, so every CPU gives the same bits.
typedef float v8 __attribute__((vector_size(32)));
constexpr int kVectors = kPanel / 8;
static_assert(kPanel % 8 == 0, "a panel is whole vectors of eight");

inline v8 load(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

}  // namespace

// On x86-64 the loader picks an AVX2 build of the two matrix kernels where
// the CPU has one (no FMA: -ffp-contract=off keeps each product rounded).
// CADENZA_NO_CLONES builds the generic kernels only (to compare their bits).
// Where AVX-512 is there, the two matrix kernels take their AVX-512 build
// instead (chosen at each call by a flag read once).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(CADENZA_NO_CLONES)
#define CADENZA_CLONES __attribute__((target_clones("avx2", "default")))
#define CADENZA_AVX512_KERNELS 1
#else
#define CADENZA_CLONES
#endif

namespace {

CADENZA_CLONES
void accumulate_vectors(const Panels& m, const float* __restrict v0, float* __restrict y0) {
  const int rows = m.rows;
  for (int p = 0; p < m.panels; ++p) {
    float* y = y0 + p * kPanel;
    v8 a[kVectors];
    for (int q = 0; q < kVectors; ++q) a[q] = load(y + 8 * q);
    const float* r = m.data.data() + static_cast<std::size_t>(p) * rows * kPanel;
    for (int k = 0; k < rows; ++k, r += kPanel) {
      const float x = v0[k];
      if (x == 0.0f) continue;  // adding +-0 would not change a
      const v8 xv = {x, x, x, x, x, x, x, x};
      for (int q = 0; q < kVectors; ++q) a[q] += xv * load(r + 8 * q);
    }
    for (int q = 0; q < kVectors; ++q) store(y + 8 * q, a[q]);
  }
}

CADENZA_CLONES
void accumulate2_vectors(const Panels& m, const float* __restrict v0, const float* __restrict v1,
                         float* __restrict y0, float* __restrict y1) {
  const int rows = m.rows;
  for (int p = 0; p < m.panels; ++p) {
    float* y = y0 + p * kPanel;
    float* z = y1 + p * kPanel;
    v8 a[kVectors], b[kVectors];
    for (int q = 0; q < kVectors; ++q) {
      a[q] = load(y + 8 * q);
      b[q] = load(z + 8 * q);
    }
    const float* r = m.data.data() + static_cast<std::size_t>(p) * rows * kPanel;
    for (int k = 0; k < rows; ++k, r += kPanel) {
      const float x = v0[k], w = v1[k];
      const v8 xv = {x, x, x, x, x, x, x, x}, wv = {w, w, w, w, w, w, w, w};
      for (int q = 0; q < kVectors; ++q) {
        const v8 rq = load(r + 8 * q);
        a[q] += xv * rq;
        b[q] += wv * rq;
      }
    }
    for (int q = 0; q < kVectors; ++q) {
      store(y + 8 * q, a[q]);
      store(z + 8 * q, b[q]);
    }
  }
}

#ifdef CADENZA_AVX512_KERNELS
// AVX-512: two panels at once, four 512-bit accumulators per row.  An add's
// latency (4 cycles) against two a cycle needs four independent sums in
// flight per row; one panel alone (two accumulators) leaves the adder
// waiting, which is why a one-panel AVX-512 kernel was slower than AVX2.
// Each element still gets x * w rounded, then added, in order of k: the
// same bits as the generic and AVX2 kernels (no FMA: -ffp-contract=off).
#define CADENZA_AVX512 __attribute__((target("avx512f")))

// Each stream's weights are prefetched 2 KB ahead: the hardware's own
// prefetcher stops at every 4 KB page, and a step whose weights another
// model (onnxruntime, in `cadenza bench`) has just pushed out of L2 reads
// them from L3.  Measured taking turns with onnxruntime
// (scripts/compare_native_builds.py): a few percent at p50, near the
// noise.  It changes no value.
constexpr int kAhead = 16 * kPanel;  // floats: 16 rows of a panel, 2 KB

// kPanels panels (one or two) for kRows input rows (one or two), from panel p.
template <int kRows, int kPanels>
CADENZA_AVX512 void panels_avx512(const Panels& m, int p, const float* const* v, float* const* y) {
  constexpr int kVectors = 2 * kPanels;  // 512-bit vectors per row: 16 of a panel's 32 columns each
  const int rows = m.rows;
  const std::size_t panel_floats = static_cast<std::size_t>(rows) * kPanel;
  const float* from[kVectors];
  for (int q = 0; q < kVectors; ++q) {
    from[q] = m.data.data() + static_cast<std::size_t>(p + q / 2) * panel_floats + 16 * (q % 2);
  }
  __m512 sum[kRows][kVectors];
  for (int i = 0; i < kRows; ++i) {
    for (int q = 0; q < kVectors; ++q) sum[i][q] = _mm512_loadu_ps(y[i] + p * kPanel + 16 * q);
  }
  for (int k = 0; k < rows; ++k) {
    const std::size_t at = static_cast<std::size_t>(k) * kPanel;
    for (int q = 0; q < kVectors; ++q) {
      _mm_prefetch(reinterpret_cast<const char*>(from[q] + at + kAhead), _MM_HINT_T0);
    }
    // As the generic one-row kernel: a zero input is skipped (adding its +-0
    // products would not change a sum); the two-row kernel adds them.
    if (kRows == 1 && v[0][k] == 0.0f) continue;
    __m512 x[kRows];
    for (int i = 0; i < kRows; ++i) x[i] = _mm512_set1_ps(v[i][k]);
    for (int q = 0; q < kVectors; ++q) {
      const __m512 w = _mm512_loadu_ps(from[q] + at);
      for (int i = 0; i < kRows; ++i) sum[i][q] = _mm512_add_ps(sum[i][q], _mm512_mul_ps(x[i], w));
    }
  }
  for (int i = 0; i < kRows; ++i) {
    for (int q = 0; q < kVectors; ++q) _mm512_storeu_ps(y[i] + p * kPanel + 16 * q, sum[i][q]);
  }
}

template <int kRows>
CADENZA_AVX512 void accumulate_avx512(const Panels& m, const float* const* v, float* const* y) {
  int p = 0;
  for (; p + 2 <= m.panels; p += 2) panels_avx512<kRows, 2>(m, p, v, y);
  if (p < m.panels) panels_avx512<kRows, 1>(m, p, v, y);
}

// Read once, at load: the CPU has AVX-512 and the system saves its
// registers (__builtin_cpu_supports checks both).  This runs as a static
// initializer, which may come before libgcc's own: hence the explicit init.
const bool kHaveAvx512 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") != 0;
}();
#else
const bool kHaveAvx512 = false;
#endif

bool avx512_wanted = true;

inline bool run_avx512() { return kHaveAvx512 && avx512_wanted; }

}  // namespace

bool use_avx512(bool wanted) {
  avx512_wanted = wanted;
  return kHaveAvx512;
}

void accumulate(const Panels& m, const float* v0, float* y0) {
#ifdef CADENZA_AVX512_KERNELS
  if (run_avx512()) {
    accumulate_avx512<1>(m, &v0, &y0);
    return;
  }
#endif
  accumulate_vectors(m, v0, y0);
}

void accumulate2(const Panels& m, const float* v0, const float* v1, float* y0, float* y1) {
#ifdef CADENZA_AVX512_KERNELS
  if (run_avx512()) {
    const float* v[2] = {v0, v1};
    float* y[2] = {y0, y1};
    accumulate_avx512<2>(m, v, y);
    return;
  }
#endif
  accumulate2_vectors(m, v0, v1, y0, y1);
}

CADENZA_CLONES
void sigmoid_inplace(float* __restrict x, int n) {
  for (int j = 0; j < n; ++j) x[j] = sigmoid(x[j]);
}

CADENZA_CLONES
void hard_sigmoid_inplace(float* __restrict x, int n, float slope, float offset) {
  for (int j = 0; j < n; ++j) {
    float v = slope * x[j] + offset;
    v = v < 1.0f ? v : 1.0f;
    x[j] = v > 0.0f ? v : 0.0f;
  }
}

CADENZA_CLONES
void tanh_inplace(float* __restrict x, int n) {
  for (int j = 0; j < n; ++j) x[j] = tanh_approx(x[j]);
}

CADENZA_CLONES
void lstm_update(const float* __restrict z, int u, float* __restrict c, float* __restrict h,
                 float* __restrict scratch) {
  // z holds the activated gates i, f, g, o.
  for (int j = 0; j < u; ++j) c[j] = z[u + j] * c[j] + z[j] * z[2 * u + j];
  for (int j = 0; j < u; ++j) scratch[j] = tanh_approx(c[j]);
  for (int j = 0; j < u; ++j) h[j] = z[3 * u + j] * scratch[j];
}

CADENZA_CLONES
float max_of(const float* __restrict x, int n) {
  float top = x[0];
  int j = 1;
  if (n >= 17) {
    v8 m = load(x + 1);
    for (j = 9; j + 8 <= n; j += 8) {
      const v8 v = load(x + j);
      m = v > m ? v : m;
    }
    for (int k = 0; k < 8; ++k) top = m[k] > top ? m[k] : top;
  }
  for (; j < n; ++j) top = x[j] > top ? x[j] : top;
  return top;
}

CADENZA_CLONES
void exp_shifted(float* __restrict x, int n, float shift) {
  for (int j = 0; j < n; ++j) x[j] = exp_approx(x[j] - shift);
}

}  // namespace cadenza::kernels
