// Proves the model step allocates and locks nothing after load: run under
// the counter (LD_PRELOAD=libcadenza_alloc_counter.so), it loads the
// weights, then arms the counter around reset, feed and distribution over
// more than 2 * window steps (the shadow switch included) and exits 1 if
// anything was counted, 2 if the counter is not preloaded.  With "int8" as a
// second argument the voices run the file's int8 section.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cadenza/model.hpp"

int main(int argc, char** argv) {
  const bool int8 = argc == 3 && std::strcmp(argv[2], "int8") == 0;
  if (argc != 2 && !int8) {
    std::fprintf(stderr, "usage: %s native.bin [int8]\n", argv[0]);
    return 2;
  }
  auto arm = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "cadenza_alloc_arm"));
  auto disarm = reinterpret_cast<long (*)(long*)>(dlsym(RTLD_DEFAULT, "cadenza_alloc_disarm"));
  if (!arm || !disarm) {
    std::fprintf(stderr, "the allocation counter is not preloaded (LD_PRELOAD)\n");
    return 2;
  }
  {
    // The control: an allocation while armed must be counted, or a zero proves nothing.
    long got[5];
    arm();
    auto* probe = new std::vector<int>(16);
    delete probe;
    disarm(got);
    if (got[0] + got[1] < 1 || got[3] < 1) {
      std::fprintf(stderr, "the counter missed a control allocation\n");
      return 2;
    }
  }
  try {
    auto weights = cadenza::Weights::load(argv[1]);
    cadenza::NativeStreamPredictor voice(weights, int8), other(weights, int8);
    const int steps = 3 * weights->window + 7;
    std::vector<int32_t> primer(weights->primer);
    double checksum = 0.0;
    arm();
    voice.reset(primer.data(), static_cast<int>(primer.size()));
    other.reset(nullptr, 0);
    checksum += other.distribution()[0];
    int32_t token = primer.empty() ? 0 : primer.back();
    for (int i = 0; i < steps; ++i) {
      voice.feed(token);
      other.feed(token);
      const double* p = voice.distribution();
      int best = 0;
      for (int j = 1; j < voice.vocab_size(); ++j) best = p[j] > p[best] ? j : best;
      checksum += other.distribution()[best];
      token = best;
    }
    long got[5];
    disarm(got);
    std::printf("%ssteps %d malloc %ld calloc %ld realloc %ld free %ld mutex_lock %ld (checksum %.6f)\n",
                int8 ? "int8 " : "", steps, got[0], got[1], got[2], got[3], got[4], checksum);
    return (got[0] || got[1] || got[2] || got[3] || got[4]) ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
