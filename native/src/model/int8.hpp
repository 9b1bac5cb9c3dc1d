// The int8 step's arithmetic: what onnxruntime computes for the bundle's int8
// graph (onnxruntime.quantization.quantize_dynamic) on x86-64 with AVX2 and
// FMA, reproduced operation for operation so the results are the same bits.
// Each was checked against onnxruntime on small graphs (docs/native.md):
//
// - DynamicQuantizeLinear: the range is [min(x, 0), max(x, 0)] over the whole
//   tensor (both rows of the batch), scale = (max - min) / 255 (1 when the
//   range is empty), zero point = round-half-even(clamp(0 - min / scale)),
//   q = clamp(round-half-even(x / scale) + zero point, 0, 255).
// - MatMulInteger, uint8 x int8: by the rule of the kernel MLAS picks on this
//   CPU (Products, below), minus the input's zero point times each column's
//   sum.
// - Sigmoid and Tanh: MLAS's FMA3 kernels (Eigen's rational approximations,
//   the polynomials evaluated with fused multiply-adds).
#pragma once

#include <cstdint>

#include "cadenza/weights.hpp"

namespace cadenza::int8 {

// How MatMulInteger adds its products.  SaturatingPairs: products of
// adjacent k (0-1, 2-3, ...) summed in pairs that saturate to int16
// (vpmaddubsw: MLAS's AVX2 and AVX512-core kernels), the pairs summed exactly
// in int32.  Exact: every product summed in int32 (MLAS's VNNI, AMX and
// SSE kernels, and its NEON ones).  The two differ only where a pair
// saturates, which the bundled model's inputs make common.
enum class Products { SaturatingPairs, Exact };
// The rule onnxruntime follows on this CPU (MLAS's kernel choice, read from
// cpuid at load).
Products onnxruntime_products();
// The rule the step uses: onnxruntime's unless a test set another.
Products products();
void use_products(Products rule);  // for the tests: both rules on any CPU

struct Quant {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
};

// The DynamicQuantizeLinear parameters of rows x0 (and x1 when not null), n each.
Quant choose(const float* x0, const float* x1, int n);
void quantize(const float* x, int n, Quant q, std::uint8_t* out);
// acc[j] = MatMulInteger(a, m)[j] for one row a of m.rows bytes with zero point zp.
void matmul(const QuantMatrix& m, const std::uint8_t* a, std::int32_t zp, std::int32_t* acc);
// The same for two rows that share the weight reads.
void matmul2(const QuantMatrix& m, const std::uint8_t* a0, std::int32_t zp0,
             const std::uint8_t* a1, std::int32_t zp1, std::int32_t* acc0, std::int32_t* acc1);
// matmul by a given rule without the vector kernels (the same integers; for the tests).
void matmul_portable(const QuantMatrix& m, const std::uint8_t* a, std::int32_t zp,
                     std::int32_t* acc, Products rule);
// out[j] = float(acc[j]) * scale: Cast, then Mul by the two scales' product.
void dequantize(const std::int32_t* acc, int n, float scale, float* out);

void sigmoid_inplace(float* x, int n);
void tanh_inplace(float* x, int n);
// The LSTM cell with the int8 graph's Tanh: c = f * c + i * g, h = o * tanh(c).
void lstm_update(const float* z, int u, float* c, float* h, float* scratch);

// Column sums (for the zero point) and the packed copy, made at load.
void prepare(QuantMatrix& m);
// The input buffer a product reads: rows rounded up to a multiple of four
// (the packed kernel reads whole groups; the padding bytes must be zero).
inline int padded_rows(int rows) { return (rows + 3) / 4 * 4; }

}  // namespace cadenza::int8
