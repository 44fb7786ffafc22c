#include "bench/baselines/qemu_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "bench/harness/testbed.h"
#include "core/unique_fd.h"
#include "qemu/qmp_commands.h"

namespace ferry::bench {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kFdName[] = "snapshot-file";
constexpr uint64_t kUnthrottled = uint64_t{1} << 40;  // bytes/s, as ferryd sets it
constexpr milliseconds kPollInterval(1);              // as ferryd polls its own copy
constexpr milliseconds kEventTimeout(10000);

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Polls query-migrate until the migration completes; fails if it fails or takes too long.
Result<qemu::MigrationInfo> AwaitCompleted(qemu::QmpClient& qmp, Clock::time_point deadline) {
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(json ret, qmp.Execute("query-migrate"));
    FERRY_ASSIGN_OR_RETURN(qemu::MigrationInfo info, qemu::ParseQueryMigrate(ret));
    if (info.state == qemu::MigrationState::kCompleted) return info;
    if (!info.InProgress() && info.state != qemu::MigrationState::kNone) {
      return Status::Unavailable("QEMU's snapshot ended as " + info.status +
                                 (info.error_desc.empty() ? "" : ": " + info.error_desc));
    }
    if (Clock::now() > deadline) return Status::DeadlineExceeded("QEMU's snapshot did not end");
    if (Interrupted()) return Status::Unavailable("interrupted");
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

const char* QemuSnapshotKindName(QemuSnapshotKind kind) {
  return kind == QemuSnapshotKind::kBackground ? "background-snapshot" : "stop+save";
}

QemuSnapshotKind ChooseQemuSnapshotKind(qemu::QmpClient& qmp, std::string* refusal) {
  auto set = qmp.Execute(
      "migrate-set-capabilities",
      {{"capabilities", json::array({{{"capability", "background-snapshot"}, {"state", true}}})}});
  if (set.ok()) return QemuSnapshotKind::kBackground;
  if (refusal) *refusal = set.status().message();
  return QemuSnapshotKind::kStopAndSave;
}

Result<QemuSnapshotFigures> TakeQemuSnapshot(qemu::QmpClient& qmp, QemuSnapshotKind kind,
                                             const std::string& file, milliseconds timeout) {
  FERRY_RETURN_IF_ERROR(
      qmp.Execute("migrate-set-parameters", {{"max-bandwidth", kUnthrottled}}).status());
  UniqueFd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) {
    return Status::Unavailable("cannot create " + file + ": " + std::strerror(errno));
  }
  FERRY_RETURN_IF_ERROR(qmp.PassFd(kFdName, out.get()));
  out.Reset();  // QEMU holds its own copy
  auto stopped = qmp.WatchEvent("STOP");
  auto resumed = qmp.WatchEvent("RESUME");
  const auto t0 = Clock::now();
  const auto deadline = t0 + timeout;
  const bool stop_first = kind == QemuSnapshotKind::kStopAndSave;
  if (stop_first) FERRY_RETURN_IF_ERROR(qmp.Execute("stop").status());
  FERRY_RETURN_IF_ERROR(qmp.Execute("migrate", {{"uri", std::string("fd:") + kFdName}}).status());
  FERRY_ASSIGN_OR_RETURN(qemu::MigrationInfo info, AwaitCompleted(qmp, deadline));
  if (stop_first) FERRY_RETURN_IF_ERROR(qmp.Execute("cont").status());
  const auto t1 = Clock::now();
  FERRY_ASSIGN_OR_RETURN(qemu::QmpEvent stop, stopped.Wait(kEventTimeout));
  FERRY_ASSIGN_OR_RETURN(qemu::QmpEvent resume, resumed.Wait(kEventTimeout));
  QemuSnapshotFigures f;
  f.total_ms = Ms(t1 - t0);
  f.pause_ms = static_cast<double>(resume.timestamp_us - stop.timestamp_us) / 1000.0;
  f.downtime_ms = static_cast<double>(info.downtime_ms);
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) f.file_bytes = static_cast<uint64_t>(st.st_size);
  return f;
}

}  // namespace ferry::bench
