// PredictionWorker: see predict_worker.hpp for the design and why.
//
// Memory order: the audio thread writes a log entry, then posted_ (release);
// the worker reads posted_ (acquire), then the entry.  A snapshot is written
// in full by its owner before the release half of the exchange on middle_
// that hands it over, and read after the acquire half of the one that takes
// it.  donated_ is handed over the same way through donation_.
#include "predict_worker.hpp"

#include <algorithm>

namespace cadenza_plugin {

PredictionWorker::PredictionWorker(std::shared_ptr<const cadenza::Weights> weights, bool int8)
    : weights_(weights),
      log_(std::make_unique<std::atomic<int32_t>[]>(kPredictLog)),
      slots_{Snapshot(weights, int8), Snapshot(weights, int8), Snapshot(weights, int8)},
      donated_(weights, int8),
      model_(weights, int8) {}

PredictionWorker::~PredictionWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    if (worker_.joinable()) {
        worker_.join();
    }
}

void PredictionWorker::start(bool thread) {
    building_ = false;
    if (thread) {
        worker_ = std::thread([this] { loop(); });
    }
}

// ---- the audio thread --------------------------------------------------------

void PredictionWorker::reset(const int32_t* primer, int count) {
    if (building_) {
        // The loader, building the engine, before anything else runs: every copy
        // starts from the same state.
        model_.reset(primer, count);
        model_.catch_up();  // the primer's steps here, off the audio thread, not at its first ask
        for (Snapshot& slot : slots_) {
            slot.model = model_;
            slot.seq = posted_local_;
            slot.fresh = false;
        }
        worker_seq_ = posted_local_;
        middle_.store(posted_local_ << 2 | 2, std::memory_order_relaxed);
        return;
    }
    serve_donation();
    Snapshot& front = slots_[front_];
    // Recorded only (the predictor is lazy): the primer is stepped by the worker,
    // from the donation below, unless the front is asked before a newer state comes.
    front.model.reset(primer, count);
    // The worker cannot replay a reset from the log: at the mark it asks for a donation.
    log_[posted_local_ % kPredictLog].store(kResetMark, std::memory_order_relaxed);
    posted_.store(++posted_local_, std::memory_order_release);
    front.seq = posted_local_;
    front.fresh = false;
}

void PredictionWorker::feed(int32_t index) {
    if (index < 0 || index >= vocab_size()) {
        return;  // NativeStreamPredictor::feed ignores it too: the state is unchanged
    }
    serve_donation();
    // The entry about to be overwritten is the oldest the front may still need.
    if (posted_local_ - slots_[front_].seq >= kPredictLog) {
        take_newer();
        if (posted_local_ - slots_[front_].seq >= kPredictLog) {
            step_front();
        }
    }
    log_[posted_local_ % kPredictLog].store(index, std::memory_order_relaxed);
    posted_.store(++posted_local_, std::memory_order_release);
}

const double* PredictionWorker::distribution() {
    serve_donation();
    ++stats_.asked;
    take_newer();
    Snapshot& front = slots_[front_];
    if (front.seq == posted_local_ && front.fresh) {
        ++stats_.ready;
    }
    while (front.seq < posted_local_) {
        step_front();
    }
    return front.model.distribution();  // computes the head here only if the worker did not
}

void PredictionWorker::take_newer() noexcept {
    const uint64_t middle = middle_.load(std::memory_order_acquire);
    const uint64_t have = slots_[front_].seq;
    if ((middle >> 2) <= have) {
        return;
    }
    // The worker publishes only newer states, so what the exchange returns is at
    // least as new as what was just read.
    const uint64_t got = middle_.exchange(have << 2 | front_, std::memory_order_acq_rel);
    front_ = static_cast<unsigned>(got & kIndexMask);
}

void PredictionWorker::step_front() noexcept {
    Snapshot& front = slots_[front_];
    front.model.feed(log_[front.seq % kPredictLog].load(std::memory_order_relaxed));
    ++front.seq;
    front.fresh = false;
    ++stats_.inline_steps;
}

void PredictionWorker::serve_donation() noexcept {
    if (donation_.load(std::memory_order_acquire) != kWanted) {
        return;
    }
    // Copy-assigning a predictor of the same weights copies into buffers of the
    // same sizes: no allocation.
    const Snapshot& front = slots_[front_];
    donated_.model = front.model;
    donated_.seq = front.seq;
    donated_.fresh = front.fresh;
    donation_.store(kDonated, std::memory_order_release);
    ++stats_.donations;
}

// ---- the worker thread ---------------------------------------------------------

void PredictionWorker::loop() {
    std::chrono::microseconds period = kPollBusy;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        lock.unlock();
        const bool worked = work();
        lock.lock();
        period = worked ? kPollBusy : std::min(period * 2, kPollIdle);
        wake_.wait_for(lock, period, [this] { return stop_; });
    }
}

bool PredictionWorker::work() {
    if (donation_.load(std::memory_order_acquire) == kDonated) {
        model_ = donated_.model;
        worker_seq_ = donated_.seq;
        lost_ = false;
        donation_.store(kNoDonation, std::memory_order_release);
        model_.catch_up();  // a reset the front only recorded is stepped here

    }
    if (lost_) {
        return false;
    }
    bool worked = false;
    for (;;) {
        const uint64_t posted = posted_.load(std::memory_order_acquire);
        if (worker_seq_ == posted) {
            return worked;
        }
        const int32_t token = log_[worker_seq_ % kPredictLog].load(std::memory_order_acquire);
        // Read before the audio thread reached it again?  An entry overwritten is
        // seen with posted_ at least kPredictLog past it (the acquire above).
        if (posted_.load(std::memory_order_acquire) - worker_seq_ >= kPredictLog ||
            token == kResetMark) {
            lose();
            return true;  // poll fast for the donation
        }
        model_.feed(token);
        // The predictor is lazy: step now, so a published state owes nothing
        // and the audio thread that takes it has no step left to do.
        model_.catch_up();
        ++worker_seq_;
        worked = true;
        const bool caught_up = worker_seq_ == posted_.load(std::memory_order_acquire);
        if (caught_up) {
            model_.distribution();  // the head, ready for the next ask
        }
        publish(caught_up);
    }
}

void PredictionWorker::publish(bool fresh) {
    Snapshot& back = slots_[back_];
    back.model = model_;
    back.seq = worker_seq_;
    back.fresh = fresh;
    const uint64_t got = middle_.exchange(worker_seq_ << 2 | back_, std::memory_order_acq_rel);
    back_ = static_cast<unsigned>(got & kIndexMask);
}

void PredictionWorker::lose() {
    lost_ = true;
    donation_.store(kWanted, std::memory_order_release);
}

}  // namespace cadenza_plugin
