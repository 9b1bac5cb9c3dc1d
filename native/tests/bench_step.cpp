// Times the model step alone, as the daemon uses it per note (feed, then
// distribution), with no Python around it: p50 and p99 in microseconds.
//   build/native/cadenza_model_bench models/default/native.bin [calls] [int8 | fp32 | fp32-no-avx512]
// fp32-no-avx512: the fp32 step on its AVX2 kernels even where AVX-512 is there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cadenza/cadenza_model.h"
#include "cadenza/model.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s native.bin [calls] [int8]\n", argv[0]);
    return 2;
  }
  const int calls = argc > 2 ? std::atoi(argv[2]) : 5000;
  const bool int8 = argc > 3 && std::strcmp(argv[3], "int8") == 0;
  const bool no_avx512 = argc > 3 && std::strcmp(argv[3], "fp32-no-avx512") == 0;
  const bool avx512 = cadenza_debug_fp32_avx512(no_avx512 ? 0 : 1) == 1 && !no_avx512 && !int8;
  if (calls < 1) {
    std::fprintf(stderr, "calls must be at least 1\n");
    return 2;
  }
  try {
    auto weights = cadenza::Weights::load(argv[1]);
    cadenza::NativeStreamPredictor voice(weights, int8);
    voice.reset(weights->primer.data(), static_cast<int>(weights->primer.size()));
    std::vector<double> samples;
    samples.reserve(calls);
    int32_t token = weights->primer.empty() ? 0 : weights->primer.back();
    for (int i = -50; i < calls; ++i) {
      const auto start = std::chrono::steady_clock::now();
      voice.feed(token);
      const double* p = voice.distribution();
      const auto stop = std::chrono::steady_clock::now();
      if (i >= 0) samples.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
      token = static_cast<int32_t>(std::max_element(p, p + voice.vocab_size()) - p);
    }
    std::sort(samples.begin(), samples.end());
    std::printf("{\"step\": \"%s\", \"avx512\": %s, \"calls\": %d, \"p50_us\": %.2f, \"p99_us\": %.2f, \"max_us\": %.2f}\n", int8 ? "int8" : "fp32", avx512 ? "true" : "false", calls,
                samples[samples.size() / 2], samples[samples.size() * 99 / 100], samples.back());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
