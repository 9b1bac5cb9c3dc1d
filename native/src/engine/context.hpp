// What the model is conditioned on (live/context.py): the rolling window fed
// to the predictor, and the choice of each next token (key, continuity, texture,
// then sampling).
#pragma once
#include <cstdint>
#include <vector>

#include "cadenza/predictor.hpp"
#include "continuity.hpp"
#include "key_awareness.hpp"
#include "sampling.hpp"
#include "texture.hpp"

namespace cadenza::eng {

class ModelContext {
 public:
  ModelContext(Predictor& predictor, const VocabMap& vocab, int capacity);
  int capacity() const { return capacity_; }
  int size() const { return count_; }
  int32_t at(int i) const { return window_[static_cast<size_t>((start_ + i) % capacity_)]; }

  void prime(const int32_t* indices, int count, bool reset);
  void push(int32_t index, bool performer);
  int choose();
  // The distribution choose() would start from, computed now and dropped:
  // a predictor's distribution depends on the tokens fed alone, and is kept
  // until the next feed, so choose() finds it done.
  void prepare() { predictor_.distribution(); }

  KeyAwareness key;
  Continuity continuity;
  Texture texture;
  Sampler sampler;
  long long predictions = 0;

 private:
  Predictor& predictor_;
  int capacity_;
  std::vector<int32_t> window_;
  int start_ = 0, count_ = 0;
  std::vector<int32_t> history_;
};

}  // namespace cadenza::eng
