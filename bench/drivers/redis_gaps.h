// What a client of the guest sees of a pause: redis PING after PING on one connection to
// 127.0.0.1:PORT (the guest's forwarded port), each sent as soon as the last reply came, and the
// longest time between two replies. A guest stopped by QEMU, or a QEMU whose main loop or vCPU is
// held, answers late; this sees it whichever process paused it and whatever that one reports.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "core/status.h"

namespace ferry::bench {

class RedisPingGaps {
 public:
  // Connects and starts pinging on a thread of its own.
  static Result<std::unique_ptr<RedisPingGaps>> Start(uint16_t port);
  ~RedisPingGaps();  // Stop()
  RedisPingGaps(const RedisPingGaps&) = delete;
  RedisPingGaps& operator=(const RedisPingGaps&) = delete;

  // Stops pinging; the longest gap between two replies (or from the last reply to now, if the
  // guest stopped answering), in ms. Unavailable if the connection failed.
  Result<double> Stop();

 private:
  explicit RedisPingGaps(int fd) : fd_(fd) {}
  void Run();
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int64_t> max_gap_ns_{0};
  std::atomic<int64_t> last_reply_ns_{0};
  std::thread thread_;
};

}  // namespace ferry::bench
