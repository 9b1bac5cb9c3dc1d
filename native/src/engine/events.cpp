#include "events.hpp"

namespace cadenza::eng {

namespace {
int rank(const Event& e) {
  const int kind = e.data[0] & 0xF0;
  if (kind == 0x80) return 0;
  if (kind == 0x90) return 2;
  return 1;
}

bool before(const Event& a, const Event& b) {
  if (a.time != b.time) return a.time < b.time;
  return rank(a) < rank(b);
}
}  // namespace

int EventBuffer::emit(Event* out, int capacity) {
  // Insertion sort: stable, in place, and linear on the nearly sorted lists
  // the engine makes.
  for (int i = 1; i < count_; ++i) {
    const Event e = events_[i];
    int j = i;
    for (; j > 0 && before(e, events_[j - 1]); --j) events_[j] = events_[j - 1];
    events_[j] = e;
  }
  if (count_ > capacity || overflow_) {
    count_ = 0;
    return -1;
  }
  for (int i = 0; i < count_; ++i) out[i] = events_[i];
  const int n = count_;
  count_ = 0;
  return n;
}

}  // namespace cadenza::eng
