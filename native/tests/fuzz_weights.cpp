// The weights loader under a fuzzer: any bytes must load or be refused with
// a WeightsError, never crash; what loads must then run a few steps (with
// the int8 step too where the file has an int8 section).
//   clang:  cmake -DCADENZA_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... (libFuzzer, ASan)
//   others: cadenza_fuzz_weights FILE...  (replays files, e.g. a corpus)
// scripts/fuzz_weights.sh builds it, seeds a corpus and runs it.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "cadenza/model.hpp"

namespace {

// A mutated byte almost always breaks the CRC-32 and the size field, and the
// loader refuses the file there; a fuzzer that stopped at those two checks
// would never reach the parser.  Under libFuzzer both are made right again
// before parsing (the tests cover the two refusals themselves), so every
// mutation tries the parser.  The buffer is static: its largest size is
// bounded by -max_len.
const std::uint8_t* with_size_and_crc(const std::uint8_t* data, std::size_t size) {
#ifdef CADENZA_LIBFUZZER
  static std::vector<std::uint8_t> fixed;
  if (size < 28) return data;
  fixed.assign(data, data + size);
  const std::uint64_t total = size;
  for (int b = 0; b < 8; ++b) fixed[16 + b] = static_cast<std::uint8_t>(total >> (8 * b));
  const std::uint32_t crc = cadenza::crc32(fixed.data(), size - 4);
  for (int b = 0; b < 4; ++b) fixed[size - 4 + b] = static_cast<std::uint8_t>(crc >> (8 * b));
  return fixed.data();
#else
  (void)size;
  return data;
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  data = with_size_and_crc(data, size);
  try {
    auto weights = cadenza::Weights::parse(data, size, "fuzz");
    for (const bool int8 : {false, true}) {
      if (int8 && !weights->int8) break;
      cadenza::NativeStreamPredictor voice(weights, int8);
      voice.reset(weights->primer.data(), static_cast<int>(weights->primer.size()));
      voice.feed(0);
      voice.distribution();
    }
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
