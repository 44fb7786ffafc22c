// A QEMU the benchmark starts itself, without ferryd: the baseline ferry is measured against.
// Its command line comes from the same qemu::BuildCommandLine ferryd uses, its files are opened
// by the same vm::OpenQemuFiles and inherited as descriptors, and its guest RAM is a file
// prepared the way ferryd prepares it, so the two sides differ only by what ferry adds. Plain
// QEMU runs as the benchmark's user (root); ferryd's run as a uid of their own.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/baselines/bare_spec.h"
#include "bench/harness/testbed.h"
#include "core/process.h"
#include "core/status.h"
#include "qemu/qmp_client.h"

namespace ferry::bench {

// Where a BareQemu runs and what it gets beyond its BareLaunch.
struct BareQemuOptions {
  // `ip netns exec NETNS qemu-system-x86_64 ...`, its files (the tap) opened in NETNS too; ""
  // for ours.
  std::string netns;
  // Appended to the command line: a migration destination's `-incoming tcp:...`, a
  // `-object tls-creds-x509,...`.
  std::vector<std::string> extra_args;
};

class BareQemu {
 public:
  using Clock = std::chrono::steady_clock;

  // Opens the files of `launch` (BareLaunch::Open: the RAM file made as ferryd makes it, the
  // sockets bound, the console log created) and spawns its command line (plus
  // options.extra_args) with them as inherited descriptors, in ferryd's QEMU environment, with
  // its output in `qemu_log`.
  static Result<std::unique_ptr<BareQemu>> Launch(const BareLaunch& launch,
                                                  const std::string& qemu_log,
                                                  const BareQemuOptions& options = {});
  // Kills QEMU if it still runs, waits for it, and removes its own RAM file.
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

  // QEMU's monitor (files.qmp_socket), connected on first use the way ferryd connects to its
  // QEMUs: the socket was bound before QEMU started, and the connection is retried every 10 ms
  // until QEMU greets on it. Fails if QEMU exits first, on timeout, or when the benchmark is
  // interrupted. The client lives as long as this object.
  Result<qemu::QmpClient*> Qmp(std::chrono::milliseconds timeout);
  // Polls query-migrate every millisecond (as ferryd does) until the migration, outgoing or
  // incoming, completes; fails if it fails, QEMU exits, on timeout or interruption.
  Status AwaitMigration(std::chrono::milliseconds timeout);

  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // False once QEMU has exited (a guest panic ends it: -no-reboot).
  bool Running() const { return process_ && process_->Running(); }
  // What it was launched from (the spec without descriptor numbers).
  const BareLaunch& launch() const { return launch_; }

 private:
  BareQemu(BareLaunch launch, std::string qemu_log)
      : launch_(std::move(launch)), qemu_log_(std::move(qemu_log)) {}
  // Reads what the console log gained since the last call; true once `marker` is in it.
  bool ConsoleHas(const std::string& marker);
  std::string DescribeEarlyExit(const ProcessExit& exit) const;

  BareLaunch launch_;
  std::string qemu_log_;
  std::optional<Process> process_;
  std::unique_ptr<qemu::QmpClient> qmp_;
  int inotify_fd_ = -1;
  int console_fd_ = -1;
  std::string console_;  // everything read so far
  Clock::time_point spawned_at_;
};

// The bare side's directories: `dir` under /tmp (its console logs, sockets, files) and `ram_dir`
// under /dev/shm (its RAM files, as ferryd's), "PREFIX-XXXXXX" each.
Status MakeBareQemuDirs(std::optional<ScratchDir>& dir, std::optional<ScratchDir>& ram_dir,
                        const std::string& prefix = "ferry-bench-qemu");

}  // namespace ferry::bench
