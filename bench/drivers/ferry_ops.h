// What the clone entries do through the real `ferry` CLI of a BenchFerryd: boot a VM, snapshot
// it, clone it (plainly or from a template's warm pool), check that a clone serves, and delete
// what a run made whatever failed. Each call is one CLI process; `cli_ms` is its wall time, from
// just before the spawn to its exit: what a user waits for.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/harness/bench_ferryd.h"
#include "core/status.h"

namespace ferry::bench {

// ferryd's ready timeout is 300 s; the CLI gets a little more to report it.
inline constexpr std::chrono::milliseconds kVmBootTimeout(330000);
inline constexpr std::chrono::milliseconds kVmCommandTimeout(60000);
// A clone command for many clones runs one restore after the other.
inline constexpr std::chrono::milliseconds kCloneTimeout(300000);
// Filling hundreds of MiB of ballast under TCG takes minutes.
inline constexpr std::chrono::milliseconds kBallastTimeout(300000);
// What a 1 GiB guest of the default image can spare (MemAvailable less ferry-guest's 64 MiB
// reserve is about 750 MiB): the rest of its RAM is its kernel, initramfs and redis.
inline constexpr uint64_t kBallastMiBOf1GiB = 700;

double DurationMs(std::chrono::steady_clock::duration d);

// `ferry vm create NAME --memory MIB --forward 0:GUEST_PORT --wait-ready`, then `vm show --json`.
struct BootedVm {
  std::string name;
  double cli_ms = 0;
  uint16_t host_port = 0;
  nlohmann::json show;
};
Result<BootedVm> BootVm(BenchFerryd& ferryd, const std::string& name, uint64_t memory_mib,
                        uint16_t guest_port);

// `ferry vm ballast VM MIB`: ferry-guest fills MIB of the guest's RAM with xorshift64* bytes (a
// fresh seed each time), so that what is held, sent or snapshotted is not zero pages.
Status GiveBallast(BenchFerryd& ferryd, const std::string& vm, uint64_t mib);

// `ferry snapshot create VM --name NAME --json`: {pause_ms, device_state_ms, ram_copy_ms, ...}.
Result<nlohmann::json> TakeSnapshot(BenchFerryd& ferryd, const std::string& vm,
                                    const std::string& name);

// One clone as the CLI reported it.
struct CloneRun {
  std::string name;
  std::chrono::steady_clock::time_point cli_started{};  // just before the CLI was spawned
  double cli_ms = 0;  // the whole command (for `--count N`: all N clones)
  nlohmann::json vm;  // the clone's VM JSON
  uint16_t host_port = 0;
  pid_t pid = -1;

  double Timing(const std::string& key) const;  // vm.timings[key], ms; 0 if absent
  // The part of the restore that follows the guest running: identity reset (restore_total_ms -
  // running_ms).
  double AfterRunningMs() const { return Timing("restore_total_ms") - Timing("running_ms"); }
  // Command start to the restored guest running, as an upper bound: the CLI's wall time minus
  // the identity reset that follows `cont`. It still includes QEMU's start, ferryd's work after
  // the identity reset (port forwards, registry) and the CLI's own start and exit.
  double CommandToRunningBoundMs() const { return cli_ms - AfterRunningMs(); }
  // Command start to the restored guest running, exactly: from just before the CLI was spawned
  // to when ferryd saw `cont` return (timings.running_at_monotonic_ns; ferryd's steady_clock
  // is CLOCK_MONOTONIC, as this process's is). The bound above when ferryd does not report it.
  double CommandToRunningMs() const;
  // Splits that: the CLI's start and its request reaching ferryd, up to ferryd beginning the
  // clone (timings.begun_at_monotonic_ns); and from there to `cont` returning. 0 when ferryd
  // does not report the times.
  double CommandToBegunMs() const;
  double BegunToRunningMs() const;
  bool FromWarmPool() const;

 private:
  // timings[key] as a point on this process's steady_clock (ferryd reports CLOCK_MONOTONIC ns).
  std::optional<std::chrono::steady_clock::time_point> At(const std::string& key) const;
};

// `ferry clone SNAPSHOT --name N1 --name N2 ... --forward 0:GUEST_PORT --json`.
Result<std::vector<CloneRun>> CloneSnapshot(BenchFerryd& ferryd, const std::string& snapshot,
                                            const std::vector<std::string>& names,
                                            uint16_t guest_port);
// `ferry vm create NAME --template TEMPLATE --forward 0:GUEST_PORT --json`.
Result<CloneRun> CloneTemplate(BenchFerryd& ferryd, const std::string& tmpl,
                               const std::string& name, uint16_t guest_port);

// Sends redis `PING` to 127.0.0.1:PORT until it answers `+PONG` (retrying refused connections)
// or `timeout` passes. A clone is only worth timing if it serves.
Status RedisPing(uint16_t port, std::chrono::milliseconds timeout);

// Whether this ferry has `ferry template` (the warm pool): its top-level help lists it.
bool HasTemplateCommand(BenchFerryd& ferryd);
// Polls `ferry template show NAME --json` until pool_ready >= want.
Status WaitPoolReady(BenchFerryd& ferryd, const std::string& tmpl, int want,
                     std::chrono::milliseconds timeout);

// Sleeps, waking early when the benchmark is interrupted (then Unavailable).
Status SleepUnlessInterrupted(std::chrono::milliseconds duration);

// VMs a run made, deleted (`vm delete NAME --force`) when this goes or on DeleteNow(), even
// after Ctrl-C, so the next run starts from nothing.
class VmsToDelete {
 public:
  explicit VmsToDelete(BenchFerryd& ferryd) : ferryd_(ferryd) {}
  ~VmsToDelete() { (void)DeleteNow(); }
  VmsToDelete(const VmsToDelete&) = delete;
  VmsToDelete& operator=(const VmsToDelete&) = delete;

  void Add(const std::string& name) { names_.push_back(name); }
  void Add(const std::vector<std::string>& names);
  // Deletes them all; the first failure, after trying every one.
  Status DeleteNow();

 private:
  BenchFerryd& ferryd_;
  std::vector<std::string> names_;
};

// Reads `Key:   123 kB` lines of a /proc file such as /proc/PID/smaps_rollup or /proc/meminfo.
Result<uint64_t> ProcKiB(const std::string& path, const std::string& key);

}  // namespace ferry::bench
