#include "bench/redis_load.h"

#include <signal.h>

#include <cstdlib>
#include <thread>

#include "bench/interrupt.h"
#include "bench/tool_run.h"
#include "core/files.h"
#include "testbed/netns.h"

namespace ferry::bench {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
constexpr milliseconds kRedisCliTimeout(10000);
constexpr milliseconds kPollInterval(200);
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

}  // namespace ferry::bench
