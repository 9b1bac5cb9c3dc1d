#include "texture.hpp"

#include "numeric.hpp"

namespace cadenza::eng {

Texture::Texture(const VocabMap& vocab)
    : vocab_size_(vocab.size()),
      chords_(static_cast<size_t>(vocab.size())),
      products_(static_cast<size_t>(vocab.size())),
      weights_(static_cast<size_t>(vocab.size())),
      weighted_(static_cast<size_t>(vocab.size())) {
  for (int i = 0; i < vocab_size_; ++i) chords_[static_cast<size_t>(i)] = vocab.info(i).chord ? 1.0 : 0.0;
}

const double* Texture::apply(const double* model, const double* steered) {
  if (strength <= 0.0 || steered == model) return steered;
  // (model * chords).sum(): the products first, then numpy's pairwise sum.
  double* products = products_.data();
  for (int i = 0; i < vocab_size_; ++i) products[i] = model[i] * chords_[static_cast<size_t>(i)];
  const double given = pairwise_sum(products, vocab_size_);
  for (int i = 0; i < vocab_size_; ++i) products[i] = steered[i] * chords_[static_cast<size_t>(i)];
  const double kept = pairwise_sum(products, vocab_size_);
  if (kept <= 0.0 || kept >= 1.0) return steered;
  const double target = kept + strength * (given - kept);
  const double chord_scale = target / kept;
  const double other_scale = (1.0 - target) / (1.0 - kept);
  for (int i = 0; i < vocab_size_; ++i) {
    weights_[static_cast<size_t>(i)] = chords_[static_cast<size_t>(i)] > 0.0 ? chord_scale : other_scale;
  }
  return weigh(steered, weights_.data(), weighted_.data(), vocab_size_);  // key_mask.weigh
}

}  // namespace cadenza::eng
