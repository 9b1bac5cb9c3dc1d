// The int8 product's kernels (AVX2 or VNNI where the CPU has them, portable)
// against a reference written here from each rule itself: products of
// adjacent rows (0-1, 2-3, ...) summed in pairs (saturated to int16 under
// SaturatingPairs), pairs summed in int64, minus the zero point times the
// column sum.  Both rules, whichever onnxruntime follows on this CPU.  Odd row counts, column
// counts off the panel width, and inputs and weights at their extremes (where
// the pairs saturate) included.  Exits 1 on the first difference.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../src/model/int8.hpp"

namespace {

using cadenza::int8::Products;

std::int64_t reference(const cadenza::QuantMatrix& m, const std::vector<std::uint8_t>& a,
                       std::int32_t zp, int j, Products rule) {
  std::int64_t sum = 0, colsum = 0;
  for (int k = 0; k < m.rows; k += 2) {
    std::int64_t pair = std::int64_t{a[k]} * m.data[static_cast<std::size_t>(k) * m.cols + j];
    if (k + 1 < m.rows) pair += std::int64_t{a[k + 1]} * m.data[static_cast<std::size_t>(k + 1) * m.cols + j];
    if (rule == Products::SaturatingPairs) pair = pair > 32767 ? 32767 : pair < -32768 ? -32768 : pair;
    sum += pair;
  }
  for (int k = 0; k < m.rows; ++k) colsum += m.data[static_cast<std::size_t>(k) * m.cols + j];
  return sum - zp * colsum;
}

int check(Products rule, long& checked, long& saturated) {
  cadenza::int8::use_products(rule);
  std::mt19937 rng(12);
  const int shapes[][2] = {{1, 1}, {3, 5}, {4, 32}, {7, 33}, {64, 512}, {128, 256}, {129, 533}, {256, 40}};
  for (const auto& shape : shapes) {
    for (int trial = 0; trial < 6; ++trial) {
      cadenza::QuantMatrix m;
      m.rows = shape[0];
      m.cols = shape[1];
      m.scale = 1.0f;
      m.data.resize(static_cast<std::size_t>(m.rows) * m.cols);
      const bool extreme = trial % 2 == 1;  // large weights and inputs: the pairs saturate
      for (auto& w : m.data) {
        const int v = extreme ? (rng() % 2 ? 127 : -128) : static_cast<int>(rng() % 255) - 127;
        w = static_cast<std::int8_t>(v);
      }
      cadenza::int8::prepare(m);
      std::vector<std::uint8_t> a0(cadenza::int8::padded_rows(m.rows), 0), a1(a0.size(), 0);
      for (int k = 0; k < m.rows; ++k) {
        a0[k] = static_cast<std::uint8_t>(extreme ? 255 - rng() % 3 : rng() % 256);
        a1[k] = static_cast<std::uint8_t>(trial == 4 ? 0 : rng() % 256);
      }
      const std::int32_t zp0 = static_cast<std::int32_t>(rng() % 256), zp1 = trial;
      std::vector<std::int32_t> one(m.cols), two0(m.cols), two1(m.cols), portable(m.cols);
      cadenza::int8::matmul(m, a0.data(), zp0, one.data());
      cadenza::int8::matmul2(m, a0.data(), zp0, a1.data(), zp1, two0.data(), two1.data());
      cadenza::int8::matmul_portable(m, a0.data(), zp0, portable.data(), rule);
      for (int j = 0; j < m.cols; ++j) {
        const std::int64_t want = reference(m, a0, zp0, j, rule), want1 = reference(m, a1, zp1, j, rule);
        if (one[j] != want || two0[j] != want || portable[j] != want || two1[j] != want1) {
          std::printf("differs (%s): %dx%d trial %d column %d: %d %d %d %d, expected %lld %lld\n",
                      rule == Products::Exact ? "exact" : "saturating pairs", m.rows, m.cols, trial, j, one[j], two0[j], portable[j], two1[j],
                      static_cast<long long>(want), static_cast<long long>(want1));
          return 1;
        }
        ++checked;
        std::int64_t exact = -std::int64_t{zp0} * m.colsum[j];
        for (int k = 0; k < m.rows; ++k) exact += std::int64_t{a0[k]} * m.data[static_cast<std::size_t>(k) * m.cols + j];
        saturated += exact != want;
      }
    }
  }
  return 0;
}

}  // namespace

int main() {
  const Products ort = cadenza::int8::onnxruntime_products();
  long checked = 0, saturated = 0, exact_checked = 0, exact_differs = 0;
  if (check(Products::Exact, exact_checked, exact_differs) != 0) return 1;
  if (check(Products::SaturatingPairs, checked, saturated) != 0) return 1;
  cadenza::int8::use_products(ort);
  std::printf("%ld columns equal under each rule, %ld of them saturated; onnxruntime here: %s\n", checked,
              saturated, ort == Products::Exact ? "exact" : "saturating pairs");
  return saturated > 0 ? 0 : 1;  // a test that never saturates proves nothing about it
}
