// The native model step: StreamRunner's semantics (cadenza/runtime.py), in C++.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cadenza/predictor.hpp"
#include "cadenza/weights.hpp"

namespace cadenza {

// One voice of the streaming model: two rows, the active one and a shadow
// that starts from zero state when the active one has `window` tokens and
// takes over at 2 * window (StreamRunner's bounded context).  Every buffer is
// allocated in the constructor; reset, feed and distribution allocate nothing,
// lock nothing and make no system call.  Not thread-safe: one owner per voice.
//
// Indices must lie in 0 .. vocab_size() - 1 (valid_index); feed ignores any
// other and reset skips it.  The C API refuses them with an error instead.
class NativeStreamPredictor final : public Predictor {
 public:
  explicit NativeStreamPredictor(std::shared_ptr<const Weights> weights);

  int vocab_size() const override { return weights_->vocab_size(); }
  int window() const override { return weights_->window; }
  void reset(const int32_t* primer, int count) override;
  void feed(int32_t index) override;
  const double* distribution() override;

  bool valid_index(int32_t index) const { return index >= 0 && index < vocab_size(); }
  int length() const { return length_; }  // tokens in the active row's context
  const Weights& weights() const { return *weights_; }

 private:
  static constexpr int kRows = 2;
  void step(int32_t index);
  void zero_row(int row);
  void head();

  std::shared_ptr<const Weights> weights_;
  int units_stride_;  // floats per row of a state buffer
  std::vector<float> h_, c_;       // [layer][row][units]
  std::vector<float> gates_;       // [row][4 * max units]
  std::vector<float> scratch_;     // [max units]
  std::vector<float> dense_;       // [dense units]
  std::vector<float> probs32_;     // [vocab]
  std::vector<double> probs64_;    // [vocab]
  std::vector<double> uniform_;    // [vocab]
  int active_ = 0;
  int length_ = 0;
  bool fresh_ = false;  // probs64_ answers the current state
};

}  // namespace cadenza
