// A redis write load on a guest from the client namespace (or from ours): the real
// `redis-benchmark`, SETs of 256-byte values over 100k random keys from 4 connections, running
// until stopped. Also the checks around it, through the real `redis-cli`: does the guest answer,
// and how many commands has its redis processed (INFO stats total_commands_processed, which moves
// with the guest).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/process.h"
#include "core/status.h"

namespace ferry::bench {

class RedisLoad {
 public:
  static constexpr int kConnections = 4;
  static constexpr int kValueBytes = 256;
  static constexpr int kKeys = 100000;

  // Starts redis-benchmark in `netns` ("" for ours) against `address`:`port`; its output goes
  // to `log`.
  static Result<std::unique_ptr<RedisLoad>> Start(const std::string& netns,
                                                  const std::string& address,
                                                  const std::string& log, uint16_t port = 6379);
  ~RedisLoad();  // Stop()
  RedisLoad(const RedisLoad&) = delete;
  RedisLoad& operator=(const RedisLoad&) = delete;

  // Unavailable (with its last words) if redis-benchmark has exited: it gave up on the guest.
  Status CheckRunning();
  void Stop();

 private:
  RedisLoad(std::string log, Process process)
      : log_(std::move(log)), process_(std::move(process)) {}
  std::string log_;
  std::optional<Process> process_;
};

// `redis-cli -h ADDRESS PING` from `netns` until it says PONG or `timeout` passes.
Status WaitRedisAnswers(const std::string& netns, const std::string& address,
                        std::chrono::milliseconds timeout);

// total_commands_processed of the redis at `address`:`port`, asked from `netns`.
Result<uint64_t> RedisCommandsProcessed(const std::string& netns, const std::string& address,
                                        uint16_t port = 6379);

// Grows the append-only file of the redis at `address` (on the guest's data disk) by at least
// `mib` MiB, asked from `netns`, and returns its size in bytes (INFO persistence
// aof_current_size). The guest's redis has no DEBUG, and keeping the data would not fit a small
// guest's RAM: Lua EVALs each SET one 8 MiB value a few times and delete it, so the file grows
// and redis's memory does not. Automatic rewrites are turned off first (they would shrink the
// file to almost nothing). FailedPrecondition if the file did not grow that much.
Result<uint64_t> FillAppendOnlyFile(const std::string& netns, const std::string& address,
                                    uint64_t mib);

}  // namespace ferry::bench
