#include "key.hpp"

#include <cmath>

#include "numeric.hpp"

namespace cadenza::eng {

namespace {

constexpr double MAJOR_PROFILE[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09,
                                      2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
constexpr double MINOR_PROFILE[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53,
                                      2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
constexpr int MAJOR_SCALE[7] = {0, 2, 4, 5, 7, 9, 11};
constexpr int MINOR_SCALE[8] = {0, 2, 3, 5, 7, 8, 10, 11};

struct Profiles {
  double rows[KEY_COUNT][12];
  Profiles() {
    for (int k = 0; k < KEY_COUNT; ++k) {
      const double* profile = k < 12 ? MAJOR_PROFILE : MINOR_PROFILE;
      const int tonic = k % 12;
      double* row = rows[k];
      for (int j = 0; j < 12; ++j) row[j] = profile[((j - tonic) % 12 + 12) % 12];  // np.roll
      // profiles -= profiles.mean(axis=1): a pairwise sum, then / 12
      const double mean = pairwise_sum(row, 12) / 12.0;
      for (int j = 0; j < 12; ++j) row[j] -= mean;
      // / np.linalg.norm(axis=1): sqrt of the pairwise sum of squares
      double squares[12];
      for (int j = 0; j < 12; ++j) squares[j] = row[j] * row[j];
      const double norm = std::sqrt(pairwise_sum(squares, 12));
      for (int j = 0; j < 12; ++j) row[j] /= norm;
    }
  }
};

const Profiles& profiles() {
  static const Profiles p;
  return p;
}

}  // namespace

const double (&scoring_profiles())[KEY_COUNT][12] { return profiles().rows; }

int estimate_key(const double counts[12]) {
  double lo = counts[0], hi = counts[0];
  for (int j = 1; j < 12; ++j) {
    lo = counts[j] < lo ? counts[j] : lo;
    hi = counts[j] > hi ? counts[j] : hi;
  }
  if (hi == lo || pairwise_sum(counts, 12) <= 0.0) return -1;
  const auto& rows = scoring_profiles();
  int best = 0;
  double best_score = 0.0;
  for (int k = 0; k < KEY_COUNT; ++k) {
    // (profiles * counts).sum(axis=1): products, then a pairwise sum of 12
    double products[12];
    for (int j = 0; j < 12; ++j) products[j] = rows[k][j] * counts[j];
    const double score = pairwise_sum12(products);
    if (k == 0 || score > best_score) {  // np.argmax: the first of equals
      best = k;
      best_score = score;
    }
  }
  return best;
}

uint16_t key_classes(int index) {
  const int tonic = index % 12;
  uint16_t bits = 0;
  if (index < 12) {
    for (int step : MAJOR_SCALE) bits |= static_cast<uint16_t>(1u << ((tonic + step) % 12));
  } else {
    for (int step : MINOR_SCALE) bits |= static_cast<uint16_t>(1u << ((tonic + step) % 12));
  }
  return bits;
}

}  // namespace cadenza::eng
