// NativeStreamPredictor: StreamRunner (cadenza/runtime.py) step for step.
//
// Two rows, as the ONNX runner's batch of two: the answer comes from the
// active row; a shadow row starts from zero state when the active one
// reaches `window` tokens and takes over at 2 * window.  Before the shadow
// starts its state is never read (it is zeroed first), so it is not
// computed; the dense head runs on the active row only, and only when a
// distribution is asked for: the same numbers, far less work.
#include <algorithm>

#include "cadenza/model.hpp"
#include "kernels.hpp"

namespace cadenza {

NativeStreamPredictor::NativeStreamPredictor(std::shared_ptr<const Weights> weights)
    : weights_(std::move(weights)) {
  const Weights& w = *weights_;
  units_stride_ = w.max_units();
  const std::size_t layers = w.layers.size();
  h_.assign(layers * kRows * units_stride_, 0.0f);
  c_.assign(layers * kRows * units_stride_, 0.0f);
  scratch_.assign(units_stride_, 0.0f);
  gates_.assign(kRows * static_cast<std::size_t>(padded(4 * units_stride_)), 0.0f);
  dense_.assign(padded(w.dense_units), 0.0f);
  probs32_.assign(padded(w.vocab_size()), 0.0f);
  probs64_.assign(w.vocab_size(), 0.0);
  // Nothing heard (default preset): every token as likely as any other.
  uniform_.assign(w.vocab_size(), 1.0 / w.vocab_size());
}

void NativeStreamPredictor::zero_row(int row) {
  const std::size_t n = units_stride_;
  for (std::size_t layer = 0; layer < weights_->layers.size(); ++layer) {
    const std::size_t at = (layer * kRows + row) * n;
    std::fill(h_.begin() + at, h_.begin() + at + n, 0.0f);
    std::fill(c_.begin() + at, c_.begin() + at + n, 0.0f);
  }
}

void NativeStreamPredictor::step(int32_t index) {
  const Weights& w = *weights_;
  const bool both = length_ >= w.window;  // the shadow row is live
  const int rows[kRows] = {active_, 1 - active_};
  const int row_count = both ? 2 : 1;
  const std::size_t stride = units_stride_;
  const std::size_t gate_stride = padded(4 * units_stride_);
  float scalar_input = 0.0f;
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& layer = w.layers[l];
    const int u = layer.units;
    const int g = 4 * u;
    const bool table = layer.kernel.rows == 0;
    const float* start = table ? &w.input_table[static_cast<std::size_t>(index) * padded(g)]
                               : layer.bias.data();
    const float* inputs[kRows];
    for (int r = 0; r < row_count; ++r) {
      std::copy(start, start + g, &gates_[r * gate_stride]);
      if (l == 0) {
        scalar_input = static_cast<float>(index) * w.input_multiplier;
        inputs[r] = &scalar_input;  // read only when the first layer has an input kernel
      } else {
        inputs[r] = &h_[((l - 1) * kRows + rows[r]) * stride];
      }
    }
    float* y0 = &gates_[0];
    float* y1 = &gates_[gate_stride];
    const float* h0 = &h_[(l * kRows + rows[0]) * stride];
    const float* h1 = &h_[(l * kRows + rows[1]) * stride];
    if (row_count == 2) {
      if (!table) kernels::accumulate2(layer.kernel, inputs[0], inputs[1], y0, y1);
      kernels::accumulate2(layer.recurrent, h0, h1, y0, y1);
    } else {
      if (!table) kernels::accumulate(layer.kernel, inputs[0], y0);
      kernels::accumulate(layer.recurrent, h0, y0);
    }
    for (int r = 0; r < row_count; ++r) {
      float* z = &gates_[r * gate_stride];
      if (w.gate == Gate::Sigmoid) {
        kernels::sigmoid_inplace(z, 2 * u);
        kernels::sigmoid_inplace(z + 3 * u, u);
      } else {
        kernels::hard_sigmoid_inplace(z, 2 * u, w.gate_slope, w.gate_offset);
        kernels::hard_sigmoid_inplace(z + 3 * u, u, w.gate_slope, w.gate_offset);
      }
      kernels::tanh_inplace(z + 2 * u, u);
      kernels::lstm_update(z, u, &c_[(l * kRows + rows[r]) * stride],
                           &h_[(l * kRows + rows[r]) * stride], scratch_.data());
    }
  }
  ++length_;
  if (length_ == 2 * w.window) {
    active_ = 1 - active_;
    length_ = w.window;
  }
  if (length_ == w.window) zero_row(1 - active_);
  fresh_ = false;
}

void NativeStreamPredictor::head() {
  const Weights& w = *weights_;
  const std::size_t last = w.layers.size() - 1;
  const float* h = &h_[(last * kRows + active_) * units_stride_];
  const int d = w.dense_units, v = w.vocab_size();
  std::copy(w.dense_bias.begin(), w.dense_bias.end(), dense_.begin());
  kernels::accumulate(w.dense_kernel, h, dense_.data());
  for (int j = 0; j < d; ++j) dense_[j] = dense_[j] > 0.0f ? dense_[j] : 0.0f;
  float* logits = probs32_.data();
  std::copy(w.out_bias.begin(), w.out_bias.end(), logits);
  kernels::accumulate(w.out_kernel, dense_.data(), logits);
  float top = logits[0];
  for (int j = 1; j < v; ++j) top = logits[j] > top ? logits[j] : top;
  float sum = 0.0f;
  kernels::exp_shifted(logits, v, top);
  for (int j = 0; j < v; ++j) sum += logits[j];
  for (int j = 0; j < v; ++j) logits[j] = logits[j] / sum;
  // cadenza.runtime._Runner._normalised: float32 probabilities to float64, divided by their sum.
  double total = 0.0;
  for (int j = 0; j < v; ++j) total += static_cast<double>(logits[j]);
  for (int j = 0; j < v; ++j) probs64_[j] = static_cast<double>(logits[j]) / total;
}

void NativeStreamPredictor::reset(const int32_t* primer, int count) {
  const Weights& w = *weights_;
  if (count < 0 || (count > 0 && primer == nullptr)) count = 0;
  // StreamRunner._context: a short primer is completed on the left by the fill.
  const int fill = static_cast<int>(w.fill.size());
  const int prefix = (count < w.window && fill > 0) ? w.window - count : 0;
  const long total = static_cast<long>(prefix) + count;
  // Tokens before the last window + (n - window) % window would be forgotten
  // by the shadow switch anyway; skipping them is exact.
  long keep = total;
  if (keep > w.window) keep = w.window + (keep - w.window) % w.window;
  std::fill(h_.begin(), h_.end(), 0.0f);
  std::fill(c_.begin(), c_.end(), 0.0f);
  active_ = 0;
  length_ = 0;
  fresh_ = false;
  for (long i = total - keep; i < total; ++i) {
    const int32_t index = i < prefix ? w.fill[fill - prefix + i] : primer[i - prefix];
    if (valid_index(index)) step(index);
  }
}

void NativeStreamPredictor::feed(int32_t index) {
  if (valid_index(index)) step(index);
}

const double* NativeStreamPredictor::distribution() {
  if (length_ == 0) return uniform_.data();
  if (!fresh_) {
    head();
    fresh_ = true;
  }
  return probs64_.data();
}

}  // namespace cadenza
