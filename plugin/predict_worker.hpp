// The model step off the audio thread: a cadenza::Predictor that the engine
// calls on the audio thread, whose work a worker thread does ahead of time.
//
// Why: the engine asks for a distribution at a grid deadline, samples, and
// feeds the chosen token; it asks again one grid step (or, after the
// performer's notes, a pause) later.  The step and head cost ~40 us p50 and
// ~140 us p99 here, and done inline they set the process callback's maximum.
// Between the feed and the next ask there are tens to hundreds of
// milliseconds: a worker has done the step by then, and the audio thread only
// takes its result.
//
// The distribution is a pure function of the token sequence (the same
// NativeStreamPredictor code on the same weights, whichever thread runs it),
// so the notes are bit for bit those of the inline predictor at every block
// size.
//
// How, without the audio thread ever waiting or making a system call:
// - feed() appends the token to a ring (the log) and publishes its sequence
//   number; reset() is recorded on the audio thread's own state (the
//   predictor is lazy: its primer is stepped at that state's next ask, or by
//   the worker, which takes it as a donation at the reset's mark).
// - Every copy the worker publishes is caught up (catch_up() after each
//   token): the audio thread never inherits a step owed.
// - The worker replays the log on its own NativeStreamPredictor and, after
//   each token, publishes a copy of it (its state and, once it has caught
//   up, the distribution) through a triple buffer: three snapshots, one owned
//   by the worker (back), one by the audio thread (front), one in between
//   (middle), exchanged through one atomic word that also carries the
//   middle's sequence number.
// - distribution() takes the middle when it is newer than its front; if the
//   front is still short of the last token fed (the worker is behind:
//   offline render faster than real time, a deadline right after a feed, a
//   descheduled worker), the audio thread replays the missing tokens on its
//   own front itself.  It never waits on the worker, even mid-step: the
//   worker's step is on the worker's own copy.
// - The worker polls: every kPollBusy after work, backing off to kPollIdle
//   while idle, so the audio thread wakes nothing and an idle instance costs
//   a wakeup every kPollIdle.
// - A worker that fell kPredictLog tokens behind, or meets a reset in the
//   log, asks the audio thread for a copy of its front (a donation, one
//   state copy on the audio thread: no allocation) and goes on from there.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "cadenza/model.hpp"
#include "cadenza/weights.hpp"

namespace cadenza_plugin {

// Tokens the log holds: how far the worker, or the audio thread's front, may
// lag the last token fed before the audio thread must step its front itself.
// At a token per grid step, minutes of music; 16 KiB.
inline constexpr uint64_t kPredictLog = 4096;
// The worker's poll after it did work, and the longest it sleeps while idle
// (the poll doubles up to it).  The idle poll bounds how late the worker sees
// the first token after a silence: well inside the shortest pause an answer
// waits (a quarter beat at 400 BPM, 37.5 ms).
inline constexpr std::chrono::microseconds kPollBusy{500};
inline constexpr std::chrono::microseconds kPollIdle{16000};

class PredictionWorker final : public cadenza::Predictor {
  public:
    // int8: every copy of the model runs the file's int8 step.
    PredictionWorker(std::shared_ptr<const cadenza::Weights> weights, bool int8);
    ~PredictionWorker() override;  // stops and joins the worker
    PredictionWorker(const PredictionWorker&) = delete;
    PredictionWorker& operator=(const PredictionWorker&) = delete;

    // Off the audio thread, once the engine is built (its primer's reset done,
    // on every copy): from here on the audio thread owns the calls below.
    // `thread`: start the worker; false: every prediction is made inline, on
    // the audio thread (the tests' reference, the same code path as a worker
    // that never keeps up).
    void start(bool thread);

    // The engine's calls: on the audio thread once started (a reset before
    // start() is the loader's, building the engine).
    int vocab_size() const override { return weights_->vocab_size(); }
    int window() const override { return weights_->window; }
    void reset(const int32_t* primer, int count) override;
    void feed(int32_t index) override;
    const double* distribution() override;

    // Read only after the audio thread has stopped calling (at destruction).
    struct Stats {
        uint64_t asked = 0;         // distribution() calls
        uint64_t ready = 0;         // ... answered by the worker's finished result
        uint64_t inline_steps = 0;  // tokens the audio thread stepped itself
        uint64_t donations = 0;     // states copied to a worker that fell behind
    };
    const Stats& stats() const { return stats_; }

  private:
    struct Snapshot {
        Snapshot(std::shared_ptr<const cadenza::Weights> weights, bool int8)
            : model(std::move(weights), int8) {}
        cadenza::NativeStreamPredictor model;
        uint64_t seq = 0;    // tokens of the log applied
        bool fresh = false;  // its distribution is computed (the worker had caught up)
    };
    enum Donation : int { kNoDonation = 0, kWanted = 1, kDonated = 2 };
    static constexpr int32_t kResetMark = -1;  // in the log: no valid token is negative
    static constexpr uint64_t kIndexMask = 3;  // the middle word: seq << 2 | snapshot index

    // Audio thread.
    void take_newer() noexcept;
    void serve_donation() noexcept;
    void step_front() noexcept;
    // Worker thread.
    void loop();
    bool work();
    void publish(bool fresh);
    void lose();

    std::shared_ptr<const cadenza::Weights> weights_;
    // The log: token n at n % kPredictLog; posted_ tokens written so far.
    std::unique_ptr<std::atomic<int32_t>[]> log_;
    std::atomic<uint64_t> posted_{0};
    uint64_t posted_local_ = 0;  // the audio thread's copy of posted_
    bool building_ = true;       // until start(): reset() primes every copy

    Snapshot slots_[3];
    unsigned front_ = 0;              // audio thread's
    unsigned back_ = 1;               // worker's
    std::atomic<uint64_t> middle_{2};  // seq 0, snapshot 2

    Snapshot donated_;  // written by the audio thread in kWanted, read by the worker in kDonated
    std::atomic<int> donation_{kNoDonation};

    cadenza::NativeStreamPredictor model_;  // the worker's own
    uint64_t worker_seq_ = 0;
    bool lost_ = false;

    Stats stats_;

    std::mutex mutex_;  // the worker's sleep and its stop only; the audio thread never takes it
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread worker_;
};

}  // namespace cadenza_plugin
