#include "bench/drivers/stream_command.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

namespace ferry::bench {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Result<StreamCommand> StreamCommand::Start(qemu::QmpClient& qmp, const std::string& command,
                                           QemuEnd qemu_end, const std::string& log) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Status::Internal(std::string("pipe: ") + std::strerror(errno));
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  UniqueFd& ours = qemu_end == QemuEnd::kWrites ? read_end : write_end;
  UniqueFd& qemus = qemu_end == QemuEnd::kWrites ? write_end : read_end;
  SpawnOptions options;
  options.inherit = {ours.get()};
  FERRY_ASSIGN_OR_RETURN(Process p, Process::Spawn({"sh", "-c", command}, log, options));
  StreamCommand c(std::move(p), command);
  ours.Reset();  // the command holds it; the pipe ends when the command or QEMU closes its end
  FERRY_RETURN_IF_ERROR(qmp.PassFd(kStreamFdName, qemus.get()));
  return c;
}

StreamCommand::~StreamCommand() {
  if (process_ && process_->Running()) {
    process_->Signal(SIGKILL);
    process_->WaitExit(kExitTimeout);
  }
}

Status StreamCommand::Finish() {
  auto ex = process_->WaitExit(kExitTimeout);
  if (!ex) return Status::DeadlineExceeded("`" + command_ + "` did not exit");
  if (!ex->known || ex->signaled || ex->code != 0) {
    return Status::Internal("`" + command_ + "` " + ex->Describe());
  }
  return Status::Ok();
}

Status SaveToFile(BareQemu& qemu, const std::string& file, const std::string& log,
                  std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, qemu.Qmp(timeout));
  FERRY_ASSIGN_OR_RETURN(StreamCommand cat, StreamCommand::Start(*qmp, "cat <&3 > " + ShellQuote(file),
                                                                 StreamCommand::QemuEnd::kWrites,
                                                                 log));
  FERRY_RETURN_IF_ERROR(
      qmp->Execute("migrate", {{"uri", std::string("fd:") + kStreamFdName}}).status());
  FERRY_RETURN_IF_ERROR(qemu.AwaitMigration(timeout));
  // QEMU closed its end once the migration ended: cat has the whole stream then.
  return cat.Finish();
}

Result<BareQemu::Clock::time_point> RestoreFromFile(BareQemu& qemu, const std::string& file,
                                                    const std::string& log,
                                                    std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, qemu.Qmp(timeout));
  FERRY_ASSIGN_OR_RETURN(StreamCommand cat,
                         StreamCommand::Start(*qmp, "cat " + ShellQuote(file) + " >&3",
                                              StreamCommand::QemuEnd::kReads, log));
  FERRY_RETURN_IF_ERROR(
      qmp->Execute("migrate-incoming", {{"uri", std::string("fd:") + kStreamFdName}}).status());
  FERRY_RETURN_IF_ERROR(qemu.AwaitMigration(timeout));
  FERRY_RETURN_IF_ERROR(qmp->Execute("cont").status());
  const auto running = BareQemu::Clock::now();
  FERRY_RETURN_IF_ERROR(cat.Finish());
  return running;
}

}  // namespace ferry::bench
