#include "rng.hpp"

#include "numeric.hpp"

namespace cadenza::eng {

namespace {

// numpy.random.bit_generator.SeedSequence's hash constants.
constexpr uint32_t INIT_A = 0x43b0d7e5u;
constexpr uint32_t MULT_A = 0x931e8875u;
constexpr uint32_t INIT_B = 0x8b51f9ddu;
constexpr uint32_t MULT_B = 0x58f38dedu;
constexpr uint32_t MIX_MULT_L = 0xca01f9ddu;
constexpr uint32_t MIX_MULT_R = 0x4973f715u;
constexpr int XSHIFT = 16;
constexpr int POOL_SIZE = 4;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= MULT_A;
  value *= hash_const;
  value ^= value >> XSHIFT;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = MIX_MULT_L * x - MIX_MULT_R * y;
  result ^= result >> XSHIFT;
  return result;
}

constexpr unsigned __int128 PCG_MULT =
    (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) | 4865540595714422341ULL;

}  // namespace

void Pcg64::seed_from(uint64_t seed) {
  // The seed as little-endian 32-bit words (0 is one word, 0).
  uint32_t entropy[2];
  int words = 0;
  entropy[words++] = static_cast<uint32_t>(seed);
  if (seed >> 32) entropy[words++] = static_cast<uint32_t>(seed >> 32);

  uint32_t pool[POOL_SIZE];
  uint32_t hash_const = INIT_A;
  for (int i = 0; i < POOL_SIZE; ++i) {
    pool[i] = hashmix(i < words ? entropy[i] : 0u, hash_const);
  }
  for (int src = 0; src < POOL_SIZE; ++src) {
    for (int dst = 0; dst < POOL_SIZE; ++dst) {
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], hash_const));
    }
  }
  // generate_state(4, uint64): eight 32-bit words, paired little-endian.
  uint32_t state32[8];
  uint32_t hc = INIT_B;
  for (int i = 0; i < 8; ++i) {
    uint32_t v = pool[i % POOL_SIZE];
    v ^= hc;
    hc *= MULT_B;
    v *= hc;
    v ^= v >> XSHIFT;
    state32[i] = v;
  }
  uint64_t s[4];
  for (int i = 0; i < 4; ++i) {
    s[i] = static_cast<uint64_t>(state32[2 * i]) | (static_cast<uint64_t>(state32[2 * i + 1]) << 32);
  }
  const unsigned __int128 initstate = (static_cast<unsigned __int128>(s[0]) << 64) | s[1];
  const unsigned __int128 initseq = (static_cast<unsigned __int128>(s[2]) << 64) | s[3];
  state_ = 0;
  inc_ = (initseq << 1u) | 1u;
  state_ = state_ * PCG_MULT + inc_;
  state_ += initstate;
  state_ = state_ * PCG_MULT + inc_;
}

uint64_t Pcg64::next_uint64() {
  state_ = state_ * PCG_MULT + inc_;
  const uint64_t hi = static_cast<uint64_t>(state_ >> 64);
  const uint64_t lo = static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122u);
  const uint64_t x = hi ^ lo;
  return (x >> rot) | (x << ((64u - rot) & 63u));
}

double Pcg64::random() {
  return static_cast<double>(next_uint64() >> 11) * (1.0 / 9007199254740992.0);
}

std::ptrdiff_t choice(Pcg64& rng, const double* p, std::ptrdiff_t n, double* cdf) {
  double total = 0.0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    total += p[i];
    cdf[i] = total;
  }
  const double last = cdf[n - 1];
  divide_all(cdf, n, last);
  const double u = rng.random();
  return search_right(cdf, n, u);
}

}  // namespace cadenza::eng
