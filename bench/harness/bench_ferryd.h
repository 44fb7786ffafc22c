// A ferryd started by the benchmark, with its own state directory under /tmp and its own RAM
// directory under /dev/shm, driven through the real `ferry` CLI binary so that what is timed is
// what a user waits for. Stop() (also run by the destructor) leaves nothing behind: VMs deleted,
// ferryd ended, any QEMU that outlived it killed, both directories removed.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/process.h"
#include "core/status.h"

namespace ferry::bench {

// One finished `ferry` command.
struct CliRun {
  std::vector<std::string> args;  // after `ferry --socket S`
  ProcessExit exit;
  std::string output;  // stdout and stderr, interleaved
  // Just before the CLI was spawned; from then to the moment its exit was seen.
  std::chrono::steady_clock::time_point started{};
  std::chrono::steady_clock::duration elapsed{};

  bool ok() const { return exit.known && !exit.signaled && exit.code == 0; }
  std::string Command() const;  // "ferry vm create b1 ..."
  Status ToStatus() const;      // Ok, or what failed and the CLI's last line
};

// Where and how a BenchFerryd runs, beyond its own directories.
struct BenchFerrydOptions {
  // A network namespace (`ip netns exec NETNS ferryd ...`); "" for the benchmark's own. The API
  // socket is a UNIX socket, so the CLI reaches it from any namespace.
  std::string netns;
  // Appended to ferryd's command line (--listen, --tls-dir, ...).
  std::vector<std::string> extra_args;
};

class BenchFerryd {
 public:
  // REQUIRES: config.ferryd_binary() and config.ferry_binary() exist.
  static Result<std::unique_ptr<BenchFerryd>> Start(const BenchConfig& config,
                                                    const BenchFerrydOptions& options = {});
  ~BenchFerryd();
  BenchFerryd(const BenchFerryd&) = delete;
  BenchFerryd& operator=(const BenchFerryd&) = delete;

  // Runs `ferry --socket SOCKET ARGS...` to its exit. Fails only if it could not run, ran past
  // `timeout` or the benchmark was interrupted (the CLI is then killed); a CLI that ran and
  // failed is a CliRun with !ok().
  // Cleanup passes kEvenIfInterrupted: it must finish after Ctrl-C too.
  enum class Wait { kInterruptible, kEvenIfInterrupted };
  Result<CliRun> Cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                     Wait wait = Wait::kInterruptible);
  // Runs a command that prints JSON (`... --json`); fails unless it succeeds and parses.
  Result<nlohmann::json> CliJson(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout,
                                 Wait wait = Wait::kInterruptible);

  // Idempotent; never fails (cleanup is best effort, with the process-kill safety net last).
  void Stop();

  const std::string& state_dir() const { return state_dir_->path(); }
  const std::string& ram_dir() const { return ram_dir_->path(); }
  // The API socket, for a client the benchmark runs itself (`ferry events`).
  const std::string& socket() const { return socket_; }
  // ferryd's pid (its CPU time in /proc), -1 once stopped.
  pid_t pid() const { return ferryd_ ? ferryd_->pid() : -1; }
  // The end of ferryd's log, for error messages.
  std::string LogTail() const;

 private:
  BenchFerryd(const BenchConfig& config, ScratchDir state_dir, ScratchDir ram_dir);
  Status WaitUntilServing(std::chrono::milliseconds timeout);

  std::string ferry_binary_;
  std::optional<ScratchDir> state_dir_;
  std::optional<ScratchDir> ram_dir_;
  std::string socket_;
  std::string log_;
  std::optional<Process> ferryd_;
};

}  // namespace ferry::bench
