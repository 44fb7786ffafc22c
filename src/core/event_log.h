// ferryd's event stream: what happened, in order, each event numbered. Kept in a bounded ring of
// the newest kDefaultCapacity events, so a client that lost its connection resumes from the last
// sequence number it saw (GET /v1/events?since=N) without losing or repeating an event, as long
// as it comes back before the ring has moved past it. docs/operations.md lists the event types.
//
// An event is one JSON object on one line:
//   {"seq":12,"time_ms":1765000000000,"type":"vm.state","vm":"web-1","state":"running",...}
// Sequence numbers start at 1 and grow by one per event for the life of the ferryd process.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ferry {

class EventLog {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  explicit EventLog(size_t capacity = kDefaultCapacity);

  // Appends an event of `type` with `fields` (an object) and wakes readers; returns its number.
  uint64_t Publish(const std::string& type, nlohmann::json fields = nlohmann::json::object());

  struct Batch {
    std::vector<std::string> lines;  // events after `since`, oldest first, each without '\n'
    uint64_t last_seq = 0;           // the number of the last line, or `since` when none
    // Set when events after `since` were dropped from the ring before this read: the first
    // number still kept (the batch starts there).
    std::optional<uint64_t> gap_from;
  };
  // The events numbered above `since` (at most `max`); waits up to `wait` for one when there is
  // none yet. Returns early, empty, once Close was called.
  Batch Read(uint64_t since, size_t max, std::chrono::milliseconds wait);
  // The number of the newest event (0 when none).
  uint64_t last_seq();
  // Wakes every reader for good (ferryd is stopping).
  void Close();
  bool closed();

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> ring_;  // ring_[i] has number first_seq_ + i
  uint64_t first_seq_ = 1;
  uint64_t next_seq_ = 1;
  bool closed_ = false;
};

// The process's event log: what ferryd serves on /v1/events.
EventLog& Events();

// Parses the `since` query parameter: a decimal sequence number, 0 to 2^63-1, nothing else.
// InvalidArgument (saying what is expected) otherwise. Exposed for fuzz/.
Result<uint64_t> ParseEventSince(std::string_view text);

}  // namespace ferry
