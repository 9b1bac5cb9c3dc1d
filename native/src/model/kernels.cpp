#include "kernels.hpp"

#include <cstring>

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
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    !defined(CADENZA_NO_CLONES)
#define CADENZA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CADENZA_CLONES
#endif

CADENZA_CLONES
void accumulate(const Panels& m, const float* __restrict v0, float* __restrict y0) {
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
void accumulate2(const Panels& m, const float* __restrict v0, const float* __restrict v1,
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
