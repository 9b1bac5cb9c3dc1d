// Hands a newly loaded engine from the loading thread to the audio thread
// without a lock: the loader offers it through an atomic pointer, the audio
// thread takes it at the start of a block and leaves the engine it replaced
// in one of kRetiredSlots atomic pointers, and the loader frees those the next
// time it runs (or the slot's destructor does).  The audio thread never frees.
// Between the loader's collect and its offer the audio thread can retire at
// most one engine, so two slots always leave room; four is a margin.
#pragma once

#include <atomic>
#include <memory>

#include "engine_adapter.hpp"

namespace cadenza_plugin {

inline constexpr int kRetiredSlots = 4;

class EngineSlot {
  public:
    EngineSlot() {
        for (auto& slot : retired_) {
            slot.store(nullptr);
        }
    }
    EngineSlot(const EngineSlot&) = delete;
    EngineSlot& operator=(const EngineSlot&) = delete;
    ~EngineSlot() {
        delete offered_.exchange(nullptr);
        collect();
        delete current_;
    }

    // Loading thread: the next engine to play; one offered earlier and never taken is freed.
    void offer(std::unique_ptr<EngineAdapter> engine) {
        collect();
        delete offered_.exchange(engine.release(), std::memory_order_acq_rel);
    }

    // Loading thread: frees the engine the audio thread last replaced.
    void collect() {
        for (auto& slot : retired_) {
            delete slot.exchange(nullptr, std::memory_order_acq_rel);
        }
    }

    // Audio thread: takes an offered engine if there is one and a free slot
    // for the engine it replaces; true when the engine changed.
    bool take_offer() noexcept {
        if (offered_.load(std::memory_order_relaxed) == nullptr) {
            return false;
        }
        std::atomic<EngineAdapter*>* free_slot = nullptr;
        for (auto& slot : retired_) {
            if (slot.load(std::memory_order_acquire) == nullptr) {
                free_slot = &slot;
                break;
            }
        }
        if (free_slot == nullptr) {
            return false;
        }
        EngineAdapter* next = offered_.exchange(nullptr, std::memory_order_acq_rel);
        if (next == nullptr) {
            return false;
        }
        free_slot->store(current_, std::memory_order_release);
        current_ = next;
        return true;
    }

    EngineAdapter* current() const noexcept { return current_; }

  private:
    EngineAdapter* current_ = nullptr;  // owned by the audio thread
    std::atomic<EngineAdapter*> offered_{nullptr};
    std::atomic<EngineAdapter*> retired_[kRetiredSlots];
};

}  // namespace cadenza_plugin
