#include "bench/drivers/redis_load.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <vector>

#include "bench/harness/testbed.h"
#include "core/files.h"
#include "testbed/netns.h"

namespace ferry::bench {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
constexpr milliseconds kRedisCliTimeout(10000);
constexpr milliseconds kPollInterval(200);
constexpr milliseconds kFillEvalTimeout(120000);  // one EVAL writes 32 MiB through TCG
constexpr uint64_t kFillValueMib = 8;
constexpr uint64_t kFillSetsPerEval = 4;  // redis buffers one EVAL's AOF entries in RAM: 32 MiB
// ARGV[1]: value bytes, ARGV[2]: SETs. Returns the SETs made.
constexpr const char* kFillScript =
    "local v = string.rep('f', tonumber(ARGV[1])) "
    "for i = 1, tonumber(ARGV[2]) do redis.call('SET', 'ferry-bench:fill', v) end "
    "redis.call('DEL', 'ferry-bench:fill') return tonumber(ARGV[2])";
// More than the 2**31 requests redis-benchmark can count: it runs until stopped.
constexpr const char* kRequests = "2000000000";

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// `argv` in network namespace `netns`, or in ours for "".
std::vector<std::string> In(const std::string& netns, const std::vector<std::string>& argv) {
  return netns.empty() ? argv : testbed::InNamespace(netns, argv);
}
}  // namespace

Result<std::unique_ptr<RedisLoad>> RedisLoad::Start(const std::string& netns,
                                                    const std::string& address,
                                                    const std::string& log, uint16_t port) {
  auto p = Process::Spawn(
      In(netns, {"redis-benchmark", "-h", address, "-p", std::to_string(port), "-t", "set", "-r",
                 std::to_string(kKeys), "-d", std::to_string(kValueBytes), "-c",
                 std::to_string(kConnections), "-n", kRequests, "-q"}),
      log);
  if (!p.ok()) return p.status().WithContext("starting redis-benchmark");
  return std::unique_ptr<RedisLoad>(new RedisLoad(log, std::move(p).value()));
}

RedisLoad::~RedisLoad() { Stop(); }

Status RedisLoad::CheckRunning() {
  if (!process_) return Status::FailedPrecondition("the redis load was stopped");
  if (auto ex = process_->WaitExit(milliseconds(0))) {
    return Status::Unavailable("redis-benchmark " + ex->Describe() +
                               "; it said: " + OneLine(TailFile(log_, 300)));
  }
  return Status::Ok();
}

void RedisLoad::Stop() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->WaitExit(milliseconds(5000));
  process_.reset();
}

Status WaitRedisAnswers(const std::string& netns, const std::string& address,
                        milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  while (true) {
    auto out = RunTool(In(netns, {"redis-cli", "-h", address, "PING"}), kRedisCliTimeout);
    if (out.ok() && out->find("PONG") != std::string::npos) return Status::Ok();
    if (Interrupted()) return Status::Unavailable("interrupted");
    last = out.ok() ? OneLine(*out) : out.status().message();
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded("redis at " + address + " did not answer PING within " +
                                      std::to_string(timeout.count() / 1000) + " s (" + last + ")");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<uint64_t> RedisCommandsProcessed(const std::string& netns, const std::string& address,
                                        uint16_t port) {
  FERRY_ASSIGN_OR_RETURN(
      std::string info,
      RunTool(In(netns, {"redis-cli", "-h", address, "-p", std::to_string(port), "INFO", "stats"}),
              kRedisCliTimeout));
  const std::string key = "total_commands_processed:";
  size_t at = info.find(key);
  if (at == std::string::npos) {
    return Status::Corruption("redis at " + address + " sent no " + key + " in INFO stats");
  }
  return std::strtoull(info.c_str() + at + key.size(), nullptr, 10);
}

namespace {
Result<std::string> RedisCli(const std::string& netns, const std::string& address,
                             std::vector<std::string> args, milliseconds timeout) {
  args.insert(args.begin(), {"redis-cli", "-h", address});
  FERRY_ASSIGN_OR_RETURN(std::string out, RunTool(testbed::InNamespace(netns, args), timeout));
  if (out.find("ERR") != std::string::npos) {
    return Status::FailedPrecondition("redis at " + address + " refused " + args[3] + ": " +
                                      OneLine(out));
  }
  return out;
}

Result<uint64_t> AppendOnlyFileBytes(const std::string& netns, const std::string& address) {
  FERRY_ASSIGN_OR_RETURN(std::string info,
                         RedisCli(netns, address, {"INFO", "persistence"}, kRedisCliTimeout));
  const std::string key = "aof_current_size:";
  size_t at = info.find(key);
  if (at == std::string::npos || info.find("aof_enabled:1") == std::string::npos) {
    return Status::FailedPrecondition("redis at " + address +
                                      " keeps no append-only file (has the guest a data disk?)");
  }
  return std::strtoull(info.c_str() + at + key.size(), nullptr, 10);
}
}  // namespace

Result<uint64_t> FillAppendOnlyFile(const std::string& netns, const std::string& address,
                                    uint64_t mib) {
  FERRY_RETURN_IF_ERROR(RedisCli(netns, address,
                                 {"CONFIG", "SET", "auto-aof-rewrite-percentage", "0"},
                                 kRedisCliTimeout)
                            .status());
  FERRY_ASSIGN_OR_RETURN(uint64_t before, AppendOnlyFileBytes(netns, address));
  const uint64_t per_eval = kFillValueMib * kFillSetsPerEval;
  for (uint64_t written = 0; written < mib; written += per_eval) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    FERRY_RETURN_IF_ERROR(RedisCli(netns, address,
                                   {"EVAL", kFillScript, "0", std::to_string(kFillValueMib << 20),
                                    std::to_string(kFillSetsPerEval)},
                                   kFillEvalTimeout)
                              .status());
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t after, AppendOnlyFileBytes(netns, address));
  if (after < before + (mib << 20)) {
    return Status::FailedPrecondition("the append-only file of redis at " + address + " grew by " +
                                      std::to_string((after - std::min(after, before)) >> 20) +
                                      " MiB, not " + std::to_string(mib) + " MiB");
  }
  return after;
}

}  // namespace ferry::bench
