// The key the engine leans towards and how hard (live/key_awareness.py):
// "off", "auto", "call" (with balance and spread) or a named key, applied to each distribution.
#pragma once
#include <cstdint>
#include <vector>

#include "vocab_map.hpp"

namespace cadenza::eng {

enum class KeySetting { Off, Call, Auto, Named };

constexpr int HEARD = 16;       // performer tokens key "call" weighs
constexpr double MAX_OWED = 3.0;

class KeyAwareness {
 public:
  explicit KeyAwareness(const VocabMap& vocab);

  void configure(KeySetting setting, int named_key, double strength, double balance, double spread);
  double strength = 0.0;
  double balance = 0.0;
  double spread = 0.0;  // "call": the key's classes added to the call's shares

  void enter(int index);
  void hear(int index);
  void leave(int index);
  void refill(const int32_t* indices, int count);

  // ``probs`` weighed towards the key; returns ``probs`` itself or an internal buffer.
  const double* apply(const double* probs);

  int current_key();  // -1: none

 private:
  void add(double* counts, int index, double sign) const;
  int estimate_now();
  void call_weights(double* weights);
  void key_weights(int key, double* weights);
  const double* weigh(const double* probs, const double* weights);

  int vocab_size_;
  std::vector<double> pitch_classes_;  // [V][12], 0 or 1
  std::vector<double> class_means_;    // [V][12], each row summing to 1
  std::vector<uint16_t> masks_;        // [V] pitch classes as bits
  // Tokens with the same pitch classes weigh the same (their rows are equal, so
  // are the sums): the weights are worked out once per distinct set.
  std::vector<int> group_of_;          // [V] -> distinct set
  std::vector<int> group_token_;       // distinct set -> a token with it
  std::vector<double> group_weights_;  // [distinct sets]
  // The call's part of group_weights_ (keep + strength * share), kept while
  // the call's scaled shares and the strength stay as they were (bit for bit):
  // within an answer only the balance moves, so the shares are worked out
  // once per call, not once per note.  The same numbers either way.
  std::vector<double> group_shares_;   // [distinct sets]
  // The sets' class means by class, then by set, padded to whole lanes of
  // four sets (zero rows): key "call" works out four sets' sums at once, each
  // lane with the same additions in the same order as pairwise_sum12.
  static constexpr int LANES = 4;
  int padded_groups_ = 0;
  std::vector<double> means_by_class_;  // [12][padded sets]
  std::vector<double> group_sums_;      // [padded sets]
  // pairwise_sum12 of (mean * v) for every set, four lanes at a time.
  void sums_with(const double* v, double* sums) const;
  double shares_scaled_[12] = {0};
  double shares_strength_ = 0.0;
  bool shares_valid_ = false;
  double counts_[12] = {0};
  int heard_[HEARD] = {0};
  int heard_start_ = 0, heard_count_ = 0;
  double heard_counts_[12] = {0};
  double answered_[12] = {0};
  KeySetting setting_ = KeySetting::Off;
  int fixed_ = -1;
  int estimate_ = -1;
  bool stale_ = true;
  std::vector<double> weights_, key_weights_, weighted_;
  int key_weights_for_ = -1;
  double key_weights_strength_ = -1.0;
};

}  // namespace cadenza::eng
