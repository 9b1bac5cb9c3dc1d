// NativeStreamPredictor: StreamRunner (cadenza/runtime.py) step for step.
//
// Two rows, as the ONNX runner's batch of two: the answer comes from the
// active row; a shadow row starts from zero state when the active one
// reaches `window` tokens and takes over at 2 * window.  Before the shadow
// starts its state is never read (it is zeroed first), so it is not
// computed; the dense head runs on the active row only, and only when a
// distribution is asked for: the same numbers, far less work.
#include <algorithm>

#include "cadenza/cadenza_model.h"
#include "cadenza/model.hpp"
#include "int8.hpp"
#include "kernels.hpp"

namespace cadenza {

NativeStreamPredictor::NativeStreamPredictor(std::shared_ptr<const Weights> weights, bool int8)
    : weights_(std::move(weights)), int8_(int8) {
  const Weights& w = *weights_;
  if (int8_ && !w.int8) {
    throw WeightsError(CADENZA_ERR_FORMAT, w.source + ": native weights hold no int8 section "
                                           "(rewrite them: cadenza native-weights BUNDLE)");
  }
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
  primer_.assign(2 * static_cast<std::size_t>(w.window), 0);
  if (int8_) {
    const std::size_t widest = std::max(units_stride_, w.dense_units);
    const std::size_t sums =
        std::max({std::size_t{4} * units_stride_, std::size_t(w.dense_units), std::size_t(w.vocab_size())});
    qin_.assign(kRows * static_cast<std::size_t>(int8::padded_rows(static_cast<int>(widest))), 0);
    acc_.assign(kRows * sums, 0);
    product_.assign(kRows * static_cast<std::size_t>(padded(4 * units_stride_)), 0.0f);
    dense2_.assign(kRows * static_cast<std::size_t>(w.dense_units), 0.0f);
  }
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
  if (pending_zero_ >= 0) {
    zero_row(pending_zero_);
    pending_zero_ = -1;
  }
  if (int8_) {
    step_int8(index);
    return;
  }
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
  advance(row_count);
}

// The row bookkeeping after a step.  The shadow row is zeroed before the
// next step rather than now: the int8 head quantizes the dense layer's input
// over both rows as they left this step, as the graph did.
void NativeStreamPredictor::advance(int row_count) {
  const Weights& w = *weights_;
  last_rows_ = row_count;
  ++length_;
  if (length_ == 2 * w.window) {
    active_ = 1 - active_;
    length_ = w.window;
  }
  if (length_ == w.window) pending_zero_ = 1 - active_;
  fresh_ = false;
}

void NativeStreamPredictor::head() {
  const Weights& w = *weights_;
  const std::size_t last = w.layers.size() - 1;
  const float* h = &h_[(last * kRows + active_) * units_stride_];
  const int d = w.dense_units;
  std::copy(w.dense_bias.begin(), w.dense_bias.end(), dense_.begin());
  kernels::accumulate(w.dense_kernel, h, dense_.data());
  for (int j = 0; j < d; ++j) dense_[j] = dense_[j] > 0.0f ? dense_[j] : 0.0f;
  float* logits = probs32_.data();
  std::copy(w.out_bias.begin(), w.out_bias.end(), logits);
  kernels::accumulate(w.out_kernel, dense_.data(), logits);
  softmax(logits);
}

void NativeStreamPredictor::softmax(float* logits) {
  const int v = weights_->vocab_size();
  const float top = kernels::max_of(logits, v);
  float sum = 0.0f;
  kernels::exp_shifted(logits, v, top);
  for (int j = 0; j < v; ++j) sum += logits[j];
  for (int j = 0; j < v; ++j) logits[j] = logits[j] / sum;
  // cadenza.runtime._Runner._normalised: float32 probabilities to float64, divided by their sum.
  double total = 0.0;
  for (int j = 0; j < v; ++j) total += static_cast<double>(logits[j]);
  for (int j = 0; j < v; ++j) probs64_[j] = static_cast<double>(logits[j]) / total;
}

// Lazy (model.hpp): reset records the tokens it would step and feed queues
// its token; catch_up runs the steps the eager calls ran, in the same order,
// so the state, and every distribution, is the same to the bit.

void NativeStreamPredictor::reset(const int32_t* primer, int count) {
  const Weights& w = *weights_;
  if (count < 0 || (count > 0 && primer == nullptr)) count = 0;
  // StreamRunner._context: a short primer is completed on the left by the fill.
  const int fill = static_cast<int>(w.fill.size());
  const int prefix = (count < w.window && fill > 0) ? w.window - count : 0;
  const long total = static_cast<long>(prefix) + count;
  // Tokens before the last window + (n - window) % window would be forgotten
  // by the shadow switch anyway; skipping them is exact.  So at most
  // 2 * window - 1 are kept: primer_ holds them.
  long keep = total;
  if (keep > w.window) keep = w.window + (keep - w.window) % w.window;
  // The state is zeroed when the reset is applied: whatever was owed before
  // it would be zeroed too, so it is dropped.
  reset_pending_ = true;
  primer_count_ = 0;
  queue_head_ = 0;
  queued_ = 0;
  for (long i = total - keep; i < total; ++i) {
    const int32_t index = i < prefix ? w.fill[fill - prefix + i] : primer[i - prefix];
    if (valid_index(index)) primer_[static_cast<std::size_t>(primer_count_++)] = index;
  }
}

void NativeStreamPredictor::apply_reset() {
  std::fill(h_.begin(), h_.end(), 0.0f);
  std::fill(c_.begin(), c_.end(), 0.0f);
  pending_zero_ = -1;
  last_rows_ = 1;
  active_ = 0;
  length_ = 0;
  fresh_ = false;
  reset_pending_ = false;
  for (int i = 0; i < primer_count_; ++i) step(primer_[static_cast<std::size_t>(i)]);
  primer_count_ = 0;
}

void NativeStreamPredictor::step_oldest() {
  const int32_t index = queue_[static_cast<std::size_t>(queue_head_)];
  queue_head_ = (queue_head_ + 1) % kMaxPendingTokens;
  --queued_;
  step(index);
}

void NativeStreamPredictor::feed(int32_t index) {
  if (!valid_index(index)) return;
  if (queued_ == kMaxPendingTokens) {
    // Full: the oldest owed work is done now (a pending reset first, as it came first).
    if (reset_pending_) apply_reset();
    step_oldest();
  }
  queue_[static_cast<std::size_t>((queue_head_ + queued_) % kMaxPendingTokens)] = index;
  ++queued_;
}

void NativeStreamPredictor::catch_up() {
  if (reset_pending_) apply_reset();
  while (queued_ > 0) step_oldest();
}

int NativeStreamPredictor::length() const {
  // advance()'s bookkeeping over the steps owed: +1 each, 2 * window back to window.
  const int w = weights_->window;
  const long n = static_cast<long>(reset_pending_ ? 0 : length_) + pending();
  return static_cast<int>(n < 2L * w ? n : w + (n - w) % w);
}

const double* NativeStreamPredictor::distribution() {
  catch_up();
  if (length_ == 0) return uniform_.data();
  if (!fresh_) {
    if (int8_) {
      head_int8();
    } else {
      head();
    }
    fresh_ = true;
  }
  return probs64_.data();
}

// The int8 graph, layer by layer: each product's input quantized over the
// live rows together (DynamicQuantizeLinear sees the whole batch), the int32
// products scaled, then (input + recurrent) + bias, as the graph adds them.
// While only the active row is live the graph's two rows are equal, so one
// row's range is the batch's.
void NativeStreamPredictor::step_int8(int32_t index) {
  const Weights& w = *weights_;
  const Int8Weights& q = *w.int8;
  const bool both = length_ >= w.window;
  const int rows[kRows] = {active_, 1 - active_};
  const int row_count = both ? 2 : 1;
  const std::size_t stride = units_stride_;
  const std::size_t gate_stride = padded(4 * units_stride_);
  const std::size_t q_stride = qin_.size() / kRows;
  const std::size_t acc_stride = acc_.size() / kRows;
  std::uint8_t* a0 = &qin_[0];
  std::uint8_t* a1 = &qin_[q_stride];
  std::int32_t* s0 = &acc_[0];
  std::int32_t* s1 = &acc_[acc_stride];
  // x (one row per live row, n each) times m, scaled, into out[row * out_stride].
  auto product = [&](const QuantMatrix& m, const float* x0, const float* x1, int n, float* out,
                     std::size_t out_stride) {
    const int8::Quant p = int8::choose(x0, row_count == 2 ? x1 : nullptr, n);
    int8::quantize(x0, n, p, a0);
    if (row_count == 2) {
      int8::quantize(x1, n, p, a1);
      int8::matmul2(m, a0, p.zero_point, a1, p.zero_point, s0, s1);
      int8::dequantize(s1, m.cols, p.scale * m.scale, out + out_stride);
    } else {
      int8::matmul(m, a0, p.zero_point, s0);
    }
    int8::dequantize(s0, m.cols, p.scale * m.scale, out);
  };
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& layer = w.layers[l];
    const int u = layer.units;
    const int g = 4 * u;
    if (l == 0) {
      const float* start = &q.input_table[static_cast<std::size_t>(index) * padded(g)];
      for (int r = 0; r < row_count; ++r) std::copy(start, start + g, &gates_[r * gate_stride]);
    } else {
      const std::size_t below = (l - 1) * kRows;
      product(q.kernel[l], &h_[(below + rows[0]) * stride], &h_[(below + rows[1]) * stride],
              w.layers[l - 1].units, &gates_[0], gate_stride);
    }
    product(q.recurrent[l], &h_[(l * kRows + rows[0]) * stride], &h_[(l * kRows + rows[1]) * stride],
            u, &product_[0], gate_stride);
    for (int r = 0; r < row_count; ++r) {
      float* z = &gates_[r * gate_stride];
      const float* rec = &product_[r * gate_stride];
      for (int j = 0; j < g; ++j) z[j] = (z[j] + rec[j]) + layer.bias[j];
      if (w.gate == Gate::Sigmoid) {
        int8::sigmoid_inplace(z, 2 * u);
        int8::sigmoid_inplace(z + 3 * u, u);
      } else {
        kernels::hard_sigmoid_inplace(z, 2 * u, w.gate_slope, w.gate_offset);
        kernels::hard_sigmoid_inplace(z + 3 * u, u, w.gate_slope, w.gate_offset);
      }
      int8::tanh_inplace(z + 2 * u, u);
      int8::lstm_update(z, u, &c_[(l * kRows + rows[r]) * stride],
                        &h_[(l * kRows + rows[r]) * stride], scratch_.data());
    }
  }
  advance(row_count);
}

// The head of the int8 graph: the dense layer on every row the last step
// computed (its ReLU output is quantized over them together), the output
// layer on the active row only.
void NativeStreamPredictor::head_int8() {
  const Weights& w = *weights_;
  const Int8Weights& q = *w.int8;
  const std::size_t last = w.layers.size() - 1;
  const int u = w.layers[last].units;
  const int d = w.dense_units, v = w.vocab_size();
  const bool two = last_rows_ == 2;
  const float* h0 = &h_[(last * kRows + active_) * units_stride_];
  const float* h1 = &h_[(last * kRows + 1 - active_) * units_stride_];
  const std::size_t q_stride = qin_.size() / kRows;
  const std::size_t acc_stride = acc_.size() / kRows;
  std::uint8_t* a0 = &qin_[0];
  std::uint8_t* a1 = &qin_[q_stride];
  std::int32_t* s0 = &acc_[0];
  std::int32_t* s1 = &acc_[acc_stride];
  float* d0 = &dense2_[0];
  float* d1 = &dense2_[d];

  const int8::Quant ph = int8::choose(h0, two ? h1 : nullptr, u);
  int8::quantize(h0, u, ph, a0);
  if (two) {
    int8::quantize(h1, u, ph, a1);
    int8::matmul2(q.dense, a0, ph.zero_point, a1, ph.zero_point, s0, s1);
    int8::dequantize(s1, d, ph.scale * q.dense.scale, d1);
  } else {
    int8::matmul(q.dense, a0, ph.zero_point, s0);
  }
  int8::dequantize(s0, d, ph.scale * q.dense.scale, d0);
  for (int r = 0; r < (two ? 2 : 1); ++r) {
    float* x = r == 0 ? d0 : d1;
    for (int j = 0; j < d; ++j) {
      const float y = x[j] + w.dense_bias[j];
      x[j] = y > 0.0f ? y : 0.0f;
    }
  }
  const int8::Quant pd = int8::choose(d0, two ? d1 : nullptr, d);
  int8::quantize(d0, d, pd, a0);
  int8::matmul(q.out, a0, pd.zero_point, s0);
  float* logits = probs32_.data();
  int8::dequantize(s0, v, pd.scale * q.out.scale, logits);
  for (int j = 0; j < v; ++j) logits[j] = logits[j] + w.out_bias[j];
  softmax(logits);
}

}  // namespace cadenza
