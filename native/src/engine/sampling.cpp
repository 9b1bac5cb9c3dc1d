#include "sampling.hpp"

#include <algorithm>

#include "numeric.hpp"
#include "portable_math.hpp"

namespace cadenza::eng {

int repeating_cycle(const int32_t* history, int count, int longest) {
  for (int period = 1; period <= longest; ++period) {
    if (count < LOOP_REPEATS * period) break;
    const int32_t* tail = history + count - period;
    bool repeats = true;
    for (int k = 1; k < LOOP_REPEATS && repeats; ++k) {
      const int32_t* earlier = history + count - (k + 1) * period;
      repeats = std::equal(earlier, earlier + period, tail);
    }
    if (repeats) return period;
  }
  return 0;
}

Sampler::Sampler(int vocab_size, int max_history)
    : vocab_size_(vocab_size),
      work_(static_cast<size_t>(vocab_size)),
      scratch_(static_cast<size_t>(vocab_size)),
      cumulative_(static_cast<size_t>(vocab_size)),
      order_(static_cast<size_t>(vocab_size)),
      history_(static_cast<size_t>(max_history) + 1) {}

void Sampler::sort_descending(const double* probs) {
  // argsort(-probs, kind='stable'): descending, ties by index (a total order,
  // so an in-place sort gives the stable result without a buffer).
  for (int i = 0; i < vocab_size_; ++i) order_[static_cast<size_t>(i)] = i;
  std::sort(order_.begin(), order_.end(), [probs](int32_t a, int32_t b) {
    const double na = -probs[a], nb = -probs[b];
    return na < nb || (!(nb < na) && a < b);
  });
}

const double* Sampler::filter(const double* in) {
  const int n = vocab_size_;
  double* probs = work_.data();
  const double t = settings.temperature;
  if (t != 1.0 && t > 0) {
    // Each step a loop of its own, as numpy takes them: each vectorises.
    for (int i = 0; i < n; ++i) probs[i] = std::max(in[i], 1e-30);
    log_in_place(probs, n);
    divide_all(probs, n, t);
    const double top = max_of(probs, n);
    for (int i = 0; i < n; ++i) probs[i] = probs[i] - top;
    exp_in_place(probs, n);
  } else {
    std::copy(in, in + n, probs);
  }
  double total = pairwise_sum(probs, n);
  divide_all(probs, n, total);
  if (settings.top_k > 0 && settings.top_k < n) {
    // np.partition(probs, -k)[-k]: the k-th largest value
    double* s = scratch_.data();
    std::copy(probs, probs + n, s);
    std::nth_element(s, s + (n - settings.top_k), s + n);
    const double cutoff = s[n - settings.top_k];
    for (int i = 0; i < n; ++i) probs[i] = probs[i] >= cutoff ? probs[i] : 0.0;
    total = pairwise_sum(probs, n);
    divide_all(probs, n, total);
  }
  if (settings.top_p < 1.0) {
    sort_descending(probs);
    double* cumulative = cumulative_.data();
    double running = 0.0;
    for (int i = 0; i < n; ++i) {
      running += probs[order_[static_cast<size_t>(i)]];
      cumulative[i] = running;
    }
    const std::ptrdiff_t keep = std::min<std::ptrdiff_t>(search_left(cumulative, n, settings.top_p) + 1, n);
    double* kept = scratch_.data();
    std::fill(kept, kept + n, 0.0);
    for (std::ptrdiff_t i = 0; i < keep; ++i) {
      const int32_t k = order_[static_cast<size_t>(i)];
      kept[k] = probs[k];
    }
    total = pairwise_sum(kept, n);
    for (int i = 0; i < n; ++i) probs[i] = kept[i] / total;
  }
  return probs;
}

int Sampler::choose(const double* probs, const int32_t* history, int count) {
  if (settings.temperature <= 0) {
    sort_descending(probs);
    const int32_t choice = order_[0];
    int32_t* h = history_.data();
    std::copy(history, history + count, h);
    h[count] = choice;
    const int guard = settings.loop_guard;
    const int period = repeating_cycle(h, count + 1, guard);
    if (period && guard && vocab_size_ > 1) {
      for (int i = 1; i < vocab_size_; ++i) {
        h[count] = order_[static_cast<size_t>(i)];
        if (!repeating_cycle(h, count + 1, guard)) return h[count];
      }
    }
    return choice;
  }
  const double* filtered = filter(probs);
  return static_cast<int>(choice(rng_, filtered, vocab_size_, cumulative_.data()));
}

}  // namespace cadenza::eng
