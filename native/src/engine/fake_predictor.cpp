// cadenza.predictor.FakePredictor's default rule, bit for bit: every token
// 0.5 / V, the one after the last fed (cyclically; 0 before any) 0.5 more,
// then divided by the pairwise sum, as numpy does.
#include <vector>

#include "cadenza/engine.hpp"
#include "numeric.hpp"

namespace cadenza {

namespace {

class FakePredictor final : public Predictor {
 public:
  FakePredictor(int vocab_size, int window)
      : size_(vocab_size), window_(window), probs_(static_cast<size_t>(vocab_size)) {}
  int vocab_size() const override { return size_; }
  int window() const override { return window_; }
  void reset(const int32_t* primer, int count) override {
    last_ = count > 0 ? primer[count - 1] : -1;
  }
  void feed(int32_t index) override { last_ = index; }
  const double* distribution() override {
    const double base = 0.5 / size_;
    for (double& p : probs_) p = base;
    const int following = last_ >= 0 ? (last_ + 1) % size_ : 0;
    probs_[static_cast<size_t>(following)] += 0.5;
    const double total = eng::pairwise_sum(probs_.data(), size_);
    for (double& p : probs_) p = p / total;
    return probs_.data();
  }

 private:
  int size_, window_;
  int32_t last_ = -1;
  std::vector<double> probs_;
};

}  // namespace

std::unique_ptr<Predictor> make_fake_predictor(int vocab_size, int window) {
  return std::make_unique<FakePredictor>(vocab_size, window);
}

}  // namespace cadenza
