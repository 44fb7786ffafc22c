// What a client of the guest sees of a pause: one redis command after another on one connection
// to 127.0.0.1:PORT (the guest's forwarded port), each sent as soon as the last reply came, and
// the longest time between two replies. A guest stopped by QEMU, or a QEMU whose main loop or
// vCPU is held, answers late; this sees it whichever process paused it and whatever that one
// reports. The command is PING for a reader, or a write (INCR) for a client that writes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace ferry::testbed {

// A wait for one reply longer than RedisReplyGaps::kLongGap.
struct ReplyGap {
  std::chrono::steady_clock::time_point start, end;  // the reply before it, the one ending it
  double ms() const { return std::chrono::duration<double, std::milli>(end - start).count(); }
};

class RedisReplyGaps {
 public:
  // Connects and starts sending `command` (an inline command, "PING" or "INCR key") on a thread
  // of its own.
  static Result<std::unique_ptr<RedisReplyGaps>> Start(uint16_t port,
                                                       const std::string& command = "PING");
  ~RedisReplyGaps();  // Stop()
  RedisReplyGaps(const RedisReplyGaps&) = delete;
  RedisReplyGaps& operator=(const RedisReplyGaps&) = delete;

  // Forgets the gaps seen so far: the longest gap is counted from now (from the last reply).
  void Restart();
  // How many replies came so far.
  uint64_t replies() const { return replies_; }
  // Waits longer than this are kept with their times, to tell what else happened then.
  static constexpr std::chrono::milliseconds kLongGap{10};
  // The long gaps since the start or Restart, oldest first (after Stop, the tail too).
  std::vector<ReplyGap> long_gaps() const;
  // Stops sending; the longest gap between two replies (or from the last reply to now, if the
  // guest stopped answering), in ms. Unavailable if the connection failed or redis answered
  // with an error.
  Result<double> Stop();

 private:
  RedisReplyGaps(int fd, const std::string& command) : fd_(fd), request_(command + "\r\n") {}
  void Run();
  // The wait from start_ns to end_ns (steady clock): the longest so far, kept if long.
  void NoteGap(int64_t start_ns, int64_t end_ns);
  int fd_;
  const std::string request_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> replies_{0};
  std::atomic<int64_t> max_gap_ns_{0};
  mutable std::mutex mu_;
  std::vector<ReplyGap> long_gaps_;  // guarded by mu_
  std::atomic<int64_t> last_reply_ns_{0};
  std::thread thread_;
};

}  // namespace ferry::testbed
