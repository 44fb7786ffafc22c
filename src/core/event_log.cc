#include "core/event_log.h"

#include "core/operation.h"

namespace ferry {

EventLog::EventLog(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

uint64_t EventLog::Publish(const std::string& type, nlohmann::json fields) {
  nlohmann::json j = nlohmann::json::object();
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
    j["seq"] = seq;
    j["time_ms"] = NowUnixMs();
    j["type"] = type;
    if (fields.is_object()) {
      for (auto& [k, v] : fields.items()) {
        if (k != "seq" && k != "time_ms" && k != "type") j[k] = std::move(v);
      }
    }
    // Fields may carry guest-reported strings: invalid UTF-8 is replaced, never thrown on.
    ring_.push_back(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (ring_.size() > capacity_) {
      ring_.pop_front();
      ++first_seq_;
    }
  }
  cv_.notify_all();
  return seq;
}

EventLog::Batch EventLog::Read(uint64_t since, size_t max, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return closed_ || next_seq_ - 1 > since; });
  Batch b;
  b.last_seq = since;
  if (closed_) return b;
  uint64_t from = since + 1;
  if (from < first_seq_ && next_seq_ > first_seq_) {
    b.gap_from = first_seq_;
    from = first_seq_;
  }
  for (uint64_t s = from; s < next_seq_ && b.lines.size() < max; ++s) {
    b.lines.push_back(ring_[s - first_seq_]);
    b.last_seq = s;
  }
  return b;
}

uint64_t EventLog::last_seq() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_ - 1;
}

void EventLog::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool EventLog::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

EventLog& Events() {
  static EventLog* log = new EventLog();  // never destroyed: published into until exit
  return *log;
}

Result<uint64_t> ParseEventSince(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("since must be an event's sequence number (0 to 2^63-1), not \"" +
                                   std::string(text.substr(0, 32)) + "\"");
  };
  if (text.empty() || text.size() > 19) return bad();
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad();
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return bad();
  return v;
}

}  // namespace ferry
