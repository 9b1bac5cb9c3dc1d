// numpy's default_rng(seed): SeedSequence -> PCG64 (XSL-RR 128/64), and the
// draws Generator.random() and Generator.choice(n, p=...) make.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cadenza::eng {

class Pcg64 {
 public:
  explicit Pcg64(uint64_t seed = 0) { seed_from(seed); }
  void seed_from(uint64_t seed);  // as np.random.default_rng(seed) (seed < 2**64)
  uint64_t next_uint64();
  double random();  // Generator.random(): 53 bits in [0, 1)

 private:
  unsigned __int128 state_ = 0;
  unsigned __int128 inc_ = 0;
};

// Generator.choice(n, p=p) for one draw: cdf = cumsum(p); cdf /= cdf[-1];
// searchsorted(cdf, random(), side='right').  ``scratch`` holds n doubles.
std::ptrdiff_t choice(Pcg64& rng, const double* p, std::ptrdiff_t n, double* scratch);

}  // namespace cadenza::eng
