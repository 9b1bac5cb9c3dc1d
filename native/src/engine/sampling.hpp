// Choosing the next token (cadenza/sampling.py): argmax with the loop guard,
// or temperature / top-k / top-p and one seeded draw.
#pragma once
#include <cstdint>
#include <vector>

#include "rng.hpp"

namespace cadenza::eng {

constexpr int LOOP_REPEATS = 3;

struct SamplingSettings {
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  int loop_guard = 0;
};

// Length of the shortest cycle (<= longest) ending ``history`` three times in a row, else 0.
int repeating_cycle(const int32_t* history, int count, int longest);

class Sampler {
 public:
  Sampler(int vocab_size, int max_history);
  void reseed(uint64_t seed) { rng_.seed_from(seed); }
  SamplingSettings settings;

  // ``history``: the window, oldest first (``count`` tokens).
  int choose(const double* probs, const int32_t* history, int count);

  // filter_distribution into an internal buffer (exposed for the tests).
  const double* filter(const double* probs);

 private:
  void sort_descending(const double* probs);
  int vocab_size_;
  Pcg64 rng_;
  std::vector<double> work_, scratch_, cumulative_;
  std::vector<int32_t> order_, history_;
};

}  // namespace cadenza::eng
