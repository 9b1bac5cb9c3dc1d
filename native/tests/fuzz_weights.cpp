// The weights loader under a fuzzer: any bytes must load or be refused with
// a WeightsError, never crash; what loads must then run a few steps.
//   clang:  cmake -DCADENZA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... (libFuzzer, ASan)
//   others: cadenza_fuzz_weights FILE...  (replays files, e.g. a corpus)
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "cadenza/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto weights = cadenza::Weights::parse(data, size, "fuzz");
    cadenza::NativeStreamPredictor voice(weights);
    voice.reset(weights->primer.data(), static_cast<int>(weights->primer.size()));
    voice.feed(0);
    voice.distribution();
  } catch (const cadenza::WeightsError&) {
  }
  return 0;
}

#ifndef CADENZA_LIBFUZZER
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream file(argv[i], std::ios::binary);
    std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(file)),
                                   std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::printf("%d files, no crash\n", argc - 1);
  return 0;
}
#endif
