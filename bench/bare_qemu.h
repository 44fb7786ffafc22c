// A QEMU the benchmark starts itself, without ferryd: the baseline ferry is measured against.
// Its command line comes from the same qemu::BuildCommandLine ferryd uses, and its guest RAM is a
// file prepared the way ferryd prepares it, so the two sides differ only by what ferry adds.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/process.h"
#include "core/status.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_client.h"

namespace ferry::bench {

// Where a BareQemu runs and what it gets beyond BuildCommandLine(spec).
struct BareQemuOptions {
  std::string netns;  // `ip netns exec NETNS qemu-system-x86_64 ...`; "" for ours
  // Appended to the command line: a migration destination's `-incoming tcp:...`, a
  // `-object tls-creds-x509,...`.
  std::vector<std::string> extra_args;
};

class BareQemu {
 public:
  using Clock = std::chrono::steady_clock;

  // Creates spec.ram_path (a sparse file of spec.memory_mib, as ferryd does) and an empty
  // spec.console_log, then spawns BuildCommandLine(spec) (plus options.extra_args) with its
  // output in `qemu_log`.
  static Result<std::unique_ptr<BareQemu>> Launch(const qemu::LaunchSpec& spec,
                                                  const std::string& qemu_log,
                                                  const BareQemuOptions& options = {});
  // Kills QEMU if it still runs, waits for it, and removes the RAM file.
  ~BareQemu();
  BareQemu(const BareQemu&) = delete;
  BareQemu& operator=(const BareQemu&) = delete;

  // Just before the fork: where the comparison side's clock starts.
  Clock::time_point spawned_at() const { return spawned_at_; }

  // Waits until `marker` appears on the guest's serial console (woken by inotify on the log,
  // no sleeps) and returns when it was seen. Fails if QEMU exits first, on timeout, or when the
  // benchmark is interrupted.
  Result<Clock::time_point> WaitForConsole(const std::string& marker,
                                           std::chrono::milliseconds timeout);

  // QEMU's monitor (spec.qmp_socket), connected on first use the way ferryd connects to its
  // QEMUs: the socket is polled every 10 ms until QEMU answers. Fails if QEMU exits first, on
  // timeout, or when the benchmark is interrupted. The client lives as long as this object.
  Result<qemu::QmpClient*> Qmp(std::chrono::milliseconds timeout);
  // Polls query-migrate every millisecond (as ferryd does) until the migration, outgoing or
  // incoming, completes; fails if it fails, QEMU exits, on timeout or interruption.
  Status AwaitMigration(std::chrono::milliseconds timeout);

  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // False once QEMU has exited (a guest panic ends it: -no-reboot).
  bool Running() const { return process_ && process_->Running(); }
  const qemu::LaunchSpec& spec() const { return spec_; }

 private:
  BareQemu(qemu::LaunchSpec spec, std::string qemu_log)
      : spec_(std::move(spec)), qemu_log_(std::move(qemu_log)) {}
  // Reads what the console log gained since the last call; true once `marker` is in it.
  bool ConsoleHas(const std::string& marker);
  std::string DescribeEarlyExit(const ProcessExit& exit) const;

  qemu::LaunchSpec spec_;
  std::string qemu_log_;
  std::optional<Process> process_;
  std::unique_ptr<qemu::QmpClient> qmp_;
  int inotify_fd_ = -1;
  int console_fd_ = -1;
  std::string console_;  // everything read so far
  Clock::time_point spawned_at_;
};

}  // namespace ferry::bench
