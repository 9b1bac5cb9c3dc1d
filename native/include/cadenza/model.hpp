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
// With int8 = true it runs the file's int8 section as the bundle's int8
// stream graph runs on onnxruntime (src/model/int8.hpp); the constructor
// throws WeightsError when the file has none.
//
// Indices must lie in 0 .. vocab_size() - 1 (valid_index); feed ignores any
// other and reset skips it.  The C API refuses them with an error instead.
class NativeStreamPredictor final : public Predictor {
 public:
  explicit NativeStreamPredictor(std::shared_ptr<const Weights> weights, bool int8 = false);

  int vocab_size() const override { return weights_->vocab_size(); }
  int window() const override { return weights_->window; }
  void reset(const int32_t* primer, int count) override;
  void feed(int32_t index) override;
  const double* distribution() override;

  bool valid_index(int32_t index) const { return index >= 0 && index < vocab_size(); }
  int length() const { return length_; }  // tokens in the active row's context
  const Weights& weights() const { return *weights_; }
  bool int8() const { return int8_; }

 private:
  static constexpr int kRows = 2;
  void step(int32_t index);
  void zero_row(int row);
  void head();
  void step_int8(int32_t index);
  void head_int8();
  void softmax(float* logits);
  void advance(int row_count);

  std::shared_ptr<const Weights> weights_;
  int units_stride_;  // floats per row of a state buffer
  std::vector<float> h_, c_;       // [layer][row][units]
  std::vector<float> gates_;       // [row][4 * max units]
  std::vector<float> scratch_;     // [max units]
  std::vector<float> dense_;       // [dense units]
  std::vector<float> probs32_;     // [vocab]
  std::vector<double> probs64_;    // [vocab]
  std::vector<double> uniform_;    // [vocab]
  // int8: quantized inputs, int32 products and both rows' dense layer (the
  // graph quantizes the dense output over both rows of its batch).
  std::vector<std::uint8_t> qin_;     // [row][max(max units, dense)]
  std::vector<std::int32_t> acc_;     // [row][max(4 * max units, dense, vocab)]
  std::vector<float> product_;        // [row][4 * max units]
  std::vector<float> dense2_;         // [row][dense]
  bool int8_ = false;
  int last_rows_ = 1;      // rows the last step computed (2: the shadow was live)
  int pending_zero_ = -1;  // a row to zero before the next step (its h still feeds the head)
  int active_ = 0;
  int length_ = 0;
  bool fresh_ = false;  // probs64_ answers the current state
};

}  // namespace cadenza
