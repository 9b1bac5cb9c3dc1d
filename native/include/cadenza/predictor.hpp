// The engine's view of a model: mirrors cadenza.predictor.Predictor.
#pragma once
#include <cstdint>

namespace cadenza {

class Predictor {
 public:
  virtual ~Predictor() = default;
  virtual int vocab_size() const = 0;
  virtual int window() const = 0;  // the model's context length
  virtual void reset(const int32_t* primer, int count) = 0;  // forget, then feed primer
  virtual void feed(int32_t index) = 0;
  // vocab_size() float64 probabilities, valid until the next call on this predictor
  virtual const double* distribution() = 0;
};

}  // namespace cadenza
