// The native model step: StreamRunner's semantics (cadenza/runtime.py), in C++.
#pragma once

#include <array>
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
//
// Lazy: feed() and reset() only record what is owed (docs/native.md, "Input
// never waits on the model"), so a performer's key costs no LSTM step; the
// steps run, in the order the eager calls would have run them, when a
// distribution is asked for or catch_up() is called.  Every result is bit for
// bit the eager one.  Copies carry what is owed with them.
class NativeStreamPredictor final : public Predictor {
 public:
  // Fed tokens kept unstepped at most: a feed beyond them steps the oldest at
  // once, so the memory is fixed and a caller that never asks (a long call)
  // pays one step per feed, as before.  Small, because a distribution asked
  // for cold (no catch_up since the feeds) steps them all then.
  static constexpr int kMaxPendingTokens = 16;

  explicit NativeStreamPredictor(std::shared_ptr<const Weights> weights, bool int8 = false);

  int vocab_size() const override { return weights_->vocab_size(); }
  int window() const override { return weights_->window; }
  void reset(const int32_t* primer, int count) override;  // recorded; stepped on catch-up
  void feed(int32_t index) override;                       // queued; stepped on catch-up
  const double* distribution() override;                   // catches up, then the head

  // Every step owed (a pending reset's primer, then the queued tokens), in
  // order, without the head: the model's work that a distribution would do.
  void catch_up();
  // Steps owed: the pending reset's primer tokens plus the queued tokens.
  int pending() const { return (reset_pending_ ? primer_count_ : 0) + queued_; }

  bool valid_index(int32_t index) const { return index >= 0 && index < vocab_size(); }
  // Tokens in the active row's context, as it will be once caught up.
  int length() const;
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
  void apply_reset();
  void step_oldest();

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
  bool fresh_ = false;  // probs64_ answers the current state (the stepped one)
  // What is owed.  A reset zeroes everything, so a newer one drops whatever
  // an older one (and the tokens fed after it) still owed: exact, and bounded.
  bool reset_pending_ = false;     // zero the state, then step primer_[0 .. primer_count_)
  std::vector<int32_t> primer_;    // [2 * window]: the tokens reset's skipping keeps
  int primer_count_ = 0;
  std::array<int32_t, kMaxPendingTokens> queue_{};  // fed tokens, a ring: oldest at queue_head_
  int queue_head_ = 0;
  int queued_ = 0;
};

}  // namespace cadenza
