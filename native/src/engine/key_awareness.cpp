#include "key_awareness.hpp"

#include <algorithm>
#include <cstring>

#include "key.hpp"
#include "numeric.hpp"
#include "portable_math.hpp"

namespace cadenza::eng {

KeyAwareness::KeyAwareness(const VocabMap& vocab)
    : vocab_size_(vocab.size()),
      pitch_classes_(static_cast<size_t>(vocab.size()) * 12, 0.0),
      class_means_(static_cast<size_t>(vocab.size()) * 12, 0.0),
      masks_(static_cast<size_t>(vocab.size()), 0),
      group_of_(static_cast<size_t>(vocab.size())),
      weights_(static_cast<size_t>(vocab.size())),
      key_weights_(static_cast<size_t>(vocab.size())),
      weighted_(static_cast<size_t>(vocab.size())) {
  std::vector<int> group_by_mask(1 << 12, -1);
  (void)scoring_profiles();  // built now, not on the first estimate
  for (int i = 0; i < vocab_size_; ++i) {
    const uint16_t mask = vocab.info(i).mask;
    masks_[static_cast<size_t>(i)] = mask;
    if (group_by_mask[mask] < 0) {
      group_by_mask[mask] = static_cast<int>(group_token_.size());
      group_token_.push_back(i);
    }
    group_of_[static_cast<size_t>(i)] = group_by_mask[mask];
    double n = 0.0;
    for (int j = 0; j < 12; ++j) {
      if (mask & (1u << j)) {
        pitch_classes_[static_cast<size_t>(i) * 12 + j] = 1.0;
        n += 1.0;
      }
    }
    for (int j = 0; j < 12; ++j) {
      class_means_[static_cast<size_t>(i) * 12 + j] = pitch_classes_[static_cast<size_t>(i) * 12 + j] / n;
    }
  }
  group_weights_.resize(group_token_.size());
  group_shares_.resize(group_token_.size());
  const int groups = static_cast<int>(group_token_.size());
  padded_groups_ = (groups + LANES - 1) / LANES * LANES;
  means_by_class_.assign(static_cast<size_t>(12) * padded_groups_, 0.0);
  group_sums_.assign(static_cast<size_t>(padded_groups_), 0.0);
  for (int g = 0; g < groups; ++g) {
    const double* row = &class_means_[static_cast<size_t>(group_token_[static_cast<size_t>(g)]) * 12];
    for (int j = 0; j < 12; ++j) means_by_class_[static_cast<size_t>(j) * padded_groups_ + g] = row[j];
  }
}

namespace {
typedef double lanes4 __attribute__((vector_size(32)));

// The body of KeyAwareness::sums_with, free so that it can be cloned for AVX2.
CADENZA_ENGINE_CLONES
void lane_sums12(const double* __restrict means, std::size_t stride, int padded, const double* v,
                 double* __restrict sums) {
  for (int g = 0; g < padded; g += 4) {
    lanes4 p[12];
    for (int j = 0; j < 12; ++j) {
      lanes4 m;
      std::memcpy(&m, means + j * stride + g, sizeof m);
      p[j] = m * v[j];
    }
    lanes4 res = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    res += p[8];
    res += p[9];
    res += p[10];
    res += p[11];
    std::memcpy(sums + g, &res, sizeof res);
  }
}
}  // namespace

void KeyAwareness::sums_with(const double* v, double* sums) const {
  static_assert(LANES == 4, "lane_sums12 takes four sets at a time");
  lane_sums12(means_by_class_.data(), static_cast<std::size_t>(padded_groups_), padded_groups_, v, sums);
}

void KeyAwareness::configure(KeySetting setting, int named_key, double s, double b, double sp) {
  setting_ = setting;
  fixed_ = setting == KeySetting::Named ? named_key : -1;
  strength = s;
  balance = b;
  spread = sp;
}

void KeyAwareness::add(double* counts, int index, double sign) const {
  const double* row = &pitch_classes_[static_cast<size_t>(index) * 12];
  for (int j = 0; j < 12; ++j) counts[j] = sign > 0 ? counts[j] + row[j] : counts[j] - row[j];
}

void KeyAwareness::enter(int index) {
  add(counts_, index, 1.0);
  add(answered_, index, 1.0);
  stale_ = true;
}

void KeyAwareness::hear(int index) {
  if (heard_count_ == HEARD) {
    add(heard_counts_, heard_[heard_start_], -1.0);
    heard_start_ = (heard_start_ + 1) % HEARD;
    --heard_count_;
  }
  heard_[(heard_start_ + heard_count_) % HEARD] = index;
  ++heard_count_;
  add(heard_counts_, index, 1.0);
  std::fill(answered_, answered_ + 12, 0.0);
}

void KeyAwareness::leave(int index) {
  add(counts_, index, -1.0);
  stale_ = true;
}

void KeyAwareness::refill(const int32_t* indices, int count) {
  // pitch_classes[indices].sum(axis=0): sums of 0 and 1, exact in any order
  std::fill(counts_, counts_ + 12, 0.0);
  for (int i = 0; i < count; ++i) add(counts_, indices[i], 1.0);
  heard_start_ = heard_count_ = 0;
  std::fill(heard_counts_, heard_counts_ + 12, 0.0);
  std::fill(answered_, answered_ + 12, 0.0);
  stale_ = true;
}

int KeyAwareness::estimate_now() {
  if (stale_) {
    estimate_ = estimate_key(counts_);
    stale_ = false;
  }
  return estimate_;
}

int KeyAwareness::current_key() {
  if (fixed_ >= 0) return fixed_;
  return setting_ == KeySetting::Auto ? estimate_now() : -1;
}

void KeyAwareness::key_weights(int key, double* weights) {
  if (key_weights_for_ != key || key_weights_strength_ != strength) {
    const uint16_t inside = key_classes(key);
    const double outside = 1.0 - strength;
    for (int i = 0; i < vocab_size_; ++i) {
      const bool in = (masks_[static_cast<size_t>(i)] & ~inside) == 0;
      key_weights_[static_cast<size_t>(i)] = in ? 1.0 : outside;
    }
    key_weights_for_ = key;
    key_weights_strength_ = strength;
  }
  std::copy(key_weights_.begin(), key_weights_.end(), weights);
}

void KeyAwareness::call_weights(double* weights) {
  const double* counts = heard_counts_;
  double top = counts[0];
  for (int j = 1; j < 12; ++j) top = counts[j] > top ? counts[j] : top;
  if (top <= 0.0) {
    std::fill(weights, weights + vocab_size_, 1.0);
    return;
  }
  double spread_counts[12];
  if (spread > 0.0) {
    const int key = estimate_now();
    if (key >= 0) {
      // counts / counts.sum() + spread * classes: a share, then the key's lift
      const uint16_t inside = key_classes(key);
      const double whole = pairwise_sum(counts, 12);
      for (int j = 0; j < 12; ++j) {
        const double in = (inside & (1u << j)) ? 1.0 : 0.0;
        spread_counts[j] = counts[j] / whole + spread * in;
      }
      counts = spread_counts;
      top = counts[0];
      for (int j = 1; j < 12; ++j) top = counts[j] > top ? counts[j] : top;
    }
  }
  double scaled[12];
  for (int j = 0; j < 12; ++j) scaled[j] = counts[j] / top;
  double* group = group_weights_.data();
  const int groups = static_cast<int>(group_token_.size());
  const bool shares_hold = shares_valid_ && std::memcmp(scaled, shares_scaled_, sizeof scaled) == 0 &&
                           std::memcmp(&strength, &shares_strength_, sizeof strength) == 0;
  if (!shares_hold) {
    const double keep = 1.0 - strength;
    double* shares = group_sums_.data();
    sums_with(scaled, shares);
    for (int g = 0; g < groups; ++g) group_shares_[static_cast<size_t>(g)] = keep + strength * shares[g];
    std::memcpy(shares_scaled_, scaled, sizeof scaled);
    shares_strength_ = strength;
    shares_valid_ = true;
  }
  std::copy(group_shares_.begin(), group_shares_.end(), group);
  const double sounded = pairwise_sum(answered_, 12);
  if (sounded > 0.0 && balance > 0.0) {
    const double total = pairwise_sum(counts, 12);
    double owed[12];
    for (int j = 0; j < 12; ++j) {
      double o = counts[j] / total * (sounded + 1.0) - answered_[j];
      o = std::min(std::max(o, -MAX_OWED), MAX_OWED);
      owed[j] = balance * o;
    }
    double* sums = group_sums_.data();
    sums_with(owed, sums);
    exp_in_place(sums, groups);
    for (int g = 0; g < groups; ++g) group[g] *= sums[g];
  }
  for (int i = 0; i < vocab_size_; ++i) weights[i] = group[group_of_[static_cast<size_t>(i)]];
}

const double* KeyAwareness::weigh(const double* probs, const double* weights) {
  return eng::weigh(probs, weights, weighted_.data(), vocab_size_);
}

const double* KeyAwareness::apply(const double* probs) {
  if (strength <= 0.0) return probs;
  double* weights = weights_.data();
  if (setting_ == KeySetting::Call) {
    call_weights(weights);
    const int key = estimate_now();
    if (key >= 0) {
      const uint16_t inside = key_classes(key);
      const double outside = 1.0 - strength;
      for (int i = 0; i < vocab_size_; ++i) {
        const bool in = (masks_[static_cast<size_t>(i)] & ~inside) == 0;
        weights[i] = weights[i] * (in ? 1.0 : outside);
      }
    }
    return weigh(probs, weights);
  }
  const int key = current_key();
  if (key < 0) return probs;
  key_weights(key, weights);
  return weigh(probs, weights);
}

}  // namespace cadenza::eng
