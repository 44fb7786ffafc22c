// A QEMU migration stream to or from a file through `sh -c COMMAND` and a pipe, the way QEMU's
// `exec:COMMAND` migration runs it. QEMU under ferryd's -sandbox spawn=deny cannot start a
// process itself, so the benchmark starts the command and hands QEMU its end of the pipe (QMP
// getfd as kStreamFdName, migration URI `fd:stream`). Used by the comparison sides that save a
// guest to a file or restore it from one (restore_migration, hold).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "bench/baselines/bare_qemu.h"
#include "core/process.h"
#include "core/status.h"
#include "qemu/qmp_client.h"

namespace ferry::bench {

inline constexpr char kStreamFdName[] = "stream";

// 'a b' quoted for sh.
std::string ShellQuote(const std::string& s);

// `sh -c COMMAND` with one end of a new pipe as its descriptor 3, the other end handed to QEMU.
// Killed, if still running, when it goes.
class StreamCommand {
 public:
  enum class QemuEnd { kWrites, kReads };
  static Result<StreamCommand> Start(qemu::QmpClient& qmp, const std::string& command,
                                     QemuEnd qemu_end, const std::string& log);
  StreamCommand(StreamCommand&&) = default;
  ~StreamCommand();

  // Waits for the command to exit; fails unless it exited with code 0.
  Status Finish();

 private:
  static constexpr std::chrono::milliseconds kExitTimeout{30000};
  StreamCommand(Process process, std::string command)
      : process_(std::move(process)), command_(std::move(command)) {}
  std::optional<Process> process_;
  std::string command_;
};

// A bare QEMU's whole state into `file` through `cat > FILE`: `migrate` (the caller has stopped
// the guest and set what it wants of the migration), until it completes and cat exits. `log`
// takes cat's output.
Status SaveToFile(BareQemu& qemu, const std::string& file, const std::string& log,
                  std::chrono::milliseconds timeout);
// A bare QEMU started with -incoming defer restored from `file` through `cat FILE`:
// `migrate-incoming`, until it completes, `cont`. Returns when `cont` was answered; cat's exit
// is checked after.
Result<BareQemu::Clock::time_point> RestoreFromFile(BareQemu& qemu, const std::string& file,
                                                    const std::string& log,
                                                    std::chrono::milliseconds timeout);

}  // namespace ferry::bench
