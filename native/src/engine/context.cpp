#include "context.hpp"

namespace cadenza::eng {

ModelContext::ModelContext(Predictor& predictor, const VocabMap& vocab, int capacity)
    : key(vocab),
      continuity(vocab),
      texture(vocab),
      sampler(vocab.size(), capacity),
      predictor_(predictor),
      capacity_(capacity),
      window_(static_cast<size_t>(capacity)),
      history_(static_cast<size_t>(capacity)) {}

void ModelContext::prime(const int32_t* indices, int count, bool reset) {
  if (!reset) {
    for (int i = 0; i < count; ++i) push(indices[i], false);
    return;
  }
  // clear, then extend: a deque with maxlen keeps the last ``capacity``
  start_ = count_ = 0;
  const int from = count > capacity_ ? count - capacity_ : 0;
  for (int i = from; i < count; ++i) window_[static_cast<size_t>(count_++)] = indices[i];
  key.refill(window_.data(), count_);
  continuity.heard();
  predictor_.reset(window_.data(), count_);
}

void ModelContext::push(int32_t index, bool performer) {
  if (count_ == capacity_) {
    key.leave(window_[static_cast<size_t>(start_)]);
    window_[static_cast<size_t>(start_)] = index;
    start_ = (start_ + 1) % capacity_;
  } else {
    window_[static_cast<size_t>((start_ + count_) % capacity_)] = index;
    ++count_;
  }
  key.enter(index);
  if (performer) {
    key.hear(index);
    continuity.heard();
  } else {
    continuity.chose(index);  // Cadenza's line, or a token primed without a reset
  }
  predictor_.feed(index);
}

int ModelContext::choose() {
  const double* model = predictor_.distribution();
  const double* probs = texture.apply(model, continuity.apply(key.apply(model)));
  for (int i = 0; i < count_; ++i) history_[static_cast<size_t>(i)] = at(i);
  const int index = sampler.choose(probs, history_.data(), count_);
  ++predictions;
  return index;
}

}  // namespace cadenza::eng
