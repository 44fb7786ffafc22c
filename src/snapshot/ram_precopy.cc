#include "snapshot/ram_precopy.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "core/elapsed.h"
#include "core/fault_point.h"
#include "core/files.h"
#include "core/operation.h"
#include "core/socket_buffer.h"
#include "core/thread_priority.h"
#include "qemu/qmp_commands.h"
#include "vm/vm_runtime.h"

namespace ferry::snapshot {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char* kFdName = "ferry-snapshot-precopy";
constexpr int64_t kUnlimitedBandwidth = int64_t{1} << 40;  // bytes/s: no throttle in practice
// How often the migration's state is asked: the pause-before-switchover is noticed within this.
// Asked, not waited for as QEMU's MIGRATION events: on the test host, acting on the events and
// asking only every 50 ms made the pause at 256 MiB 1.25x and the copy 1.3x as long (bench/
// README.md, snapshot_pause).
constexpr milliseconds kPollInterval(1);
// Once QEMU has stopped the guest for the last pass, how often the migration's end is asked: every
// wait here is the guest's. The query itself waits for QEMU's main lock, which the last pass holds.
constexpr std::chrono::microseconds kStoppedPollInterval(200);
constexpr milliseconds kCancelTimeout(10000);
// QEMU's end of the stream: its last burst, written with the guest stopped, lands in the kernel
// at once instead of in turns with our reader (core/socket_buffer.h). Not more: what QEMU wrote
// before its stop and we have not read yet (the kernel holds up to twice this) is read inside the
// pause. With 16 MiB, a 4 GiB guest's first snapshot after a fill paused 56 ms, QEMU's last
// flush waiting on that backlog (bench/README.md, snapshot_pause).
constexpr int kStreamBufferBytes = 1 << 20;
constexpr int kReaderNice = 10;

// Ends a migration that will not finish and makes sure the guest runs again (QEMU restarts a
// guest it stopped for the last pass when the migration fails, but not every path says so).
void CancelAndResume(vm::VmRuntime& rt, bool was_running, const std::string& what) {
  (void)qemu::MigrateCancelAndWait(rt, kCancelTimeout);
  if (!was_running) return;
  auto status = qemu::QueryStatus(rt);
  if (status.ok() && status->running) return;
  if (Status resumed = qemu::Cont(rt); !resumed.ok()) {
    spdlog::error("{}: the VM did not resume after the copy was cancelled: {}", what,
                  resumed.message());
  }
}

// Both came before the cont's reply: waiting on them is a safeguard, not a delay.
constexpr milliseconds kEventWait(1000);

}  // namespace

namespace {

// Counts QEMU's passes over RAM on the way to the split.
class PassCounter : public qemu::MigrationStreamVisitor {
 public:
  explicit PassCounter(StreamRamSplit& split) : split_(split) {}
  Status OnRamBlocks(const std::vector<qemu::MigrationRamBlock>& blocks) override {
    return split_.OnRamBlocks(blocks);
  }
  Status OnRamPage(const qemu::MigrationRamPage& page) override { return split_.OnRamPage(page); }
  Status OnRamSectionEnd(qemu::RamSectionKind kind) override {
    ++passes_;
    return split_.OnRamSectionEnd(kind);
  }
  Status OnOtherBytes(std::span<const uint8_t> bytes) override {
    return split_.OnOtherBytes(bytes);
  }
  uint64_t passes() const { return passes_; }

 private:
  StreamRamSplit& split_;
  uint64_t passes_ = 0;
};

// One precopy: the socket QEMU writes, the thread that reads it, the files it fills.
class Precopy {
 public:
  Precopy(vm::VmRuntime& rt, const PrecopyOptions& options) : rt_(rt), options_(options) {}
  ~Precopy() { StopReading(); }

  Status Open(const std::string& image_path, const std::string& device_state_path);
  // With `pause_at_switchover`, QEMU waits at its stop for the last pass until Drive continues it.
  Status Start(bool pause_at_switchover);
  // Polls until the stream is complete. With `at_switchover`, runs it when QEMU has stopped the
  // guest for the switchover and waits (Start(true)), then continues.
  Status Drive(const std::function<Status()>& at_switchover, Operation& op, PrecopyResult& result);
  // QEMU's timestamp (µs) of its STOP for the last pass, once the copy completed; 0 when QEMU's
  // events did not say (a QMP without events).
  int64_t StopMicros();
  // Waits for the reader to see the stream's end; the stream must be whole.
  Status FinishReading();
  // The image's chunk table, once the stream ended; the image synced and made read-only.
  Result<RamImage> SealImage();
  void StopReading();
  // Whether the reader has stopped on its own (it refused QEMU's stream, could not write the
  // image, or QEMU closed the stream), and why; refusal() is valid after StopReading.
  bool refused() const { return refused_; }
  const Status& refusal() const { return refusal_; }
  const StreamRamSplit& split() const { return *split_; }
  uint64_t passes() const { return counter_->passes(); }

 private:
  vm::VmRuntime& rt_;
  const PrecopyOptions& options_;
  UniqueFd ours_, theirs_, image_, device_state_;
  std::string image_path_;
  std::unique_ptr<StreamRamSplit> split_;
  std::unique_ptr<PassCounter> counter_;
  std::unique_ptr<qemu::MigrationStreamReader> reader_;
  // QEMU's STOP for the last pass: the poll wakes on it at once and then asks more often.
  std::optional<qemu::QmpClient::EventWaiter> stop_watch_;
  int64_t stop_us_ = 0;  // that STOP's timestamp, once seen
  std::thread thread_;
  Status read_status_;
  std::atomic<bool> stopping_{false};
  Status refusal_;
  std::atomic<bool> refused_{false};  // set after refusal_
};

Status Precopy::Open(const std::string& image_path, const std::string& device_state_path) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Status::Unavailable("socketpair: " + std::string(std::strerror(errno)));
  }
  ours_.Reset(sv[0]);
  theirs_.Reset(sv[1]);
  (void)SetSendBuffer(theirs_.get(), kStreamBufferBytes);
  constexpr int kFlags = O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  image_.Reset(::open(image_path.c_str(), O_RDWR | kFlags, 0600));
  if (!image_.valid()) {
    return Status::Unavailable("cannot create " + image_path + ": " + std::strerror(errno));
  }
  device_state_.Reset(::open(device_state_path.c_str(), O_WRONLY | kFlags, 0600));
  if (!device_state_.valid()) {
    return Status::Unavailable("cannot create " + device_state_path + ": " + std::strerror(errno));
  }
  const int device_fd = device_state_.get();
  const std::string what = "the device state " + device_state_path;
  StreamRamSplitLimits limits = options_.limits;
  limits.digest = true;
  image_path_ = image_path;
  split_ = std::make_unique<StreamRamSplit>(
      image_.get(), image_path, limits,
      [device_fd, what](std::span<const uint8_t> b) { return WriteAllTo(device_fd, b, what); });
  counter_ = std::make_unique<PassCounter>(*split_);
  reader_ = std::make_unique<qemu::MigrationStreamReader>(*counter_);
  thread_ = std::thread([this] {
    // Behind the guest's own threads: while the guest runs, a copy that takes the CPU from its
    // vCPU or QEMU's main loop stalls its clients (the thread ends with the stream).
    LowerThisThreadPriority(kReaderNice);
    read_status_ = qemu::ReadMigrationStream(ours_.get(), *reader_, "QEMU's stream");
    // QEMU writes the last pass and the device state holding its main lock: a stream nobody
    // reads would stall the guest's QEMU, QMP included, until the cancel. Shut, its writes fail
    // and the migration ends at once.
    if (!read_status_.ok() && !stopping_) {
      refusal_ = read_status_;
      refused_ = true;
      ::shutdown(ours_.get(), SHUT_RDWR);
    }
  });
  return Status::Ok();
}

Status Precopy::Start(bool pause_at_switchover) {
  // auto-converge: a guest that dirties memory faster than it is copied is slowed until the
  // copy converges, as in a live migration. Pausing before the switchover costs the guest QEMU's
  // wait for the continue (a 1 ms drain of its semaphore, then our poll and the command): only
  // when there is something to do at the instant.
  FERRY_RETURN_IF_ERROR(
      qemu::SetMigrationCapabilities(rt_, {{"x-ignore-shared", false},
                                           {"auto-converge", true},
                                           {"pause-before-switchover", pause_at_switchover}}));
  FERRY_RETURN_IF_ERROR(
      qemu::SetMigrationParameters(rt_, {options_.downtime_limit.count(), kUnlimitedBandwidth}));
  FERRY_RETURN_IF_ERROR(rt_.QmpPassFd(kFdName, theirs_.get()));
  theirs_.Reset();  // QEMU holds its own copy: its close ends our read
  if (auto watch = rt_.WatchQmpEvent("STOP"); watch.ok()) stop_watch_.emplace(std::move(*watch));
  return qemu::Migrate(rt_, std::string("fd:") + kFdName);
}

Status Precopy::Drive(const std::function<Status()>& at_switchover, Operation& op,
                      PrecopyResult& result) {
  const auto started = Clock::now();
  const auto deadline = started + options_.timeout;
  const bool pausing = static_cast<bool>(at_switchover);
  bool switched = false;
  bool stopped = false;  // QEMU said STOP: the last pass runs, the guest waits
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(qemu::MigrationInfo info, qemu::QueryMigrate(rt_));
    if (info.state == qemu::MigrationState::kCompleted) {
      result.copy_ms = MsSince(started);
      result.pause_ms = info.downtime_ms;
      return switched || !pausing ? Status::Ok()
                                  : Status::Internal(
                                        "QEMU completed the copy without pausing before the "
                                        "switchover");
    }
    if (info.state == qemu::MigrationState::kFailed ||
        info.state == qemu::MigrationState::kCancelled || !info.InProgress()) {
      return Status::Unavailable("QEMU's copy ended as " +
                                 (info.status.empty() ? std::string("none") : info.status) +
                                 (info.error_desc.empty() ? "" : ": " + info.error_desc));
    }
    if (pausing && info.state == qemu::MigrationState::kPreSwitchover && !switched) {
      // The guest is stopped: this is the snapshot's instant.
      const auto at = Clock::now();
      op.SetPhase("at the snapshot's instant", 60);
      FERRY_RETURN_IF_ERROR(at_switchover());
      result.switchover_ms = MsSince(at);
      FERRY_RETURN_IF_ERROR(qemu::MigrateContinueFromPreSwitchover(rt_));
      switched = true;
    } else if (!switched && !stopped && info.has_ram && info.ram_total > 0) {
      const uint64_t done = info.ram_total - std::min(info.ram_remaining, info.ram_total);
      op.SetPhase("copying RAM while the guest runs",
                  20 + static_cast<int>(35 * done / info.ram_total));
      if (done > 0) FaultPoint("snapshot.precopy.copying");
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("the copy did not converge within " +
                                      std::to_string(options_.timeout.count() / 1000) + " s");
    }
    if (stopped || switched) {
      std::this_thread::sleep_for(kStoppedPollInterval);
    } else if (stop_watch_) {
      // The wait is the poll's interval, ended early by the STOP.
      auto stop = stop_watch_->Wait(kPollInterval);
      if (stop.ok()) {
        stopped = true;
        stop_us_ = stop->timestamp_us;
      } else if (stop.status().code() != Status::Code::kDeadlineExceeded) {
        stop_watch_.reset();  // QMP's events ended: poll as without them
      }
    } else {
      std::this_thread::sleep_for(kPollInterval);
    }
  }
}

int64_t Precopy::StopMicros() {
  if (stop_us_ == 0 && stop_watch_) {
    // The copy completed between two polls, before the wait saw the STOP.
    if (auto stop = stop_watch_->Wait(kEventWait); stop.ok()) stop_us_ = stop->timestamp_us;
  }
  return stop_us_;
}

Status Precopy::FinishReading() {
  if (thread_.joinable()) thread_.join();
  FERRY_RETURN_IF_ERROR(read_status_);
  FERRY_RETURN_IF_ERROR(split_->Finish());
  if (::fsync(device_state_.get()) != 0) {
    return Status::Unavailable("syncing the device state: " + std::string(std::strerror(errno)));
  }
  return Status::Ok();
}

Result<RamImage> Precopy::SealImage() {
  FERRY_ASSIGN_OR_RETURN(RamImage image, split_->Image());
  // fsync is a no-op on tmpfs, where images normally live; on a disk it makes "the manifest
  // exists" (written after this, with its own fsync) imply "the RAM bytes survived a crash".
  // Clones map the image MAP_PRIVATE: it is never written again.
  if (::fsync(image_.get()) != 0 || ::fchmod(image_.get(), 0400) != 0) {
    return Status::Internal("RAM image " + image_path_ +
                            ": cannot sync it or make it read-only: " + std::strerror(errno));
  }
  return image;
}

void Precopy::StopReading() {
  if (!thread_.joinable()) return;
  // A QEMU that neither sends nor closes must not hold this thread: the read ends now.
  stopping_ = true;
  ::shutdown(ours_.get(), SHUT_RDWR);
  thread_.join();
}

}  // namespace

Result<PrecopyResult> PrecopySnapshot(vm::VmRuntime& rt, const std::string& image_path,
                                      const std::string& device_state_path,
                                      const std::function<Status()>& at_switchover, Operation& op,
                                      const PrecopyOptions& options) {
  PrecopyResult result;
  Precopy copy(rt, options);
  FERRY_RETURN_IF_ERROR(copy.Open(image_path, device_state_path).WithContext(options.what));
  // Watched before the cont: the guest's pause ends with this RESUME (it begins with the STOP
  // Drive waits on).
  auto resumes = rt.WatchQmpEvent("RESUME");
  Status st = copy.Start(static_cast<bool>(at_switchover));
  if (st.ok()) st = copy.Drive(at_switchover, op, result);
  // A reader that stopped before the copy failed is why it failed (after it, the cancel ends the
  // stream and the reader's error is only a consequence).
  const bool refused_first = !st.ok() && copy.refused();
  Clock::time_point completed_at = Clock::now();
  if (st.ok()) st = qemu::Cont(rt);
  // The guest stood still from QEMU's stop to the stream's end (downtime), then until the cont.
  result.pause_ms += MsSince(completed_at);
  if (st.ok()) {
    // By QEMU's own clock (µs, as its events carry); where either event is missing, the
    // downtime-based pause_ms stands.
    const int64_t stop_us = copy.StopMicros();
    auto resume =
        resumes.ok() ? resumes->Wait(kEventWait) : Result<qemu::QmpEvent>(resumes.status());
    if (stop_us > 0 && resume.ok() && resume->timestamp_us > stop_us) {
      result.pause_us = resume->timestamp_us - stop_us;
      result.pause_ms = (result.pause_us + 999) / 1000;
    }
  }
  if (!st.ok()) CancelAndResume(rt, /*was_running=*/true, options.what);
  // A later live migration of this VM must not wait for a switchover nobody continues.
  Status reset = qemu::SetMigrationCapability(rt, "pause-before-switchover", false);
  if (st.ok()) st = copy.FinishReading();
  copy.StopReading();
  // QEMU's copy failed because the reader refused its stream: the refusal says why.
  if (refused_first && !copy.refusal().ok() && copy.refusal().message() != st.message()) {
    st = Status::FromCode(copy.refusal().code(),
                          copy.refusal().message() + "; then " + st.message());
  }
  if (st.ok()) st = reset;
  if (st.ok()) {
    const auto sealing = Clock::now();
    auto image = copy.SealImage();
    st = image.status();
    if (image.ok()) result.ram = std::move(*image);
    result.seal_ms = MsSince(sealing);
  }
  if (!st.ok()) return st.WithContext(options.what);
  result.passes = copy.passes();
  result.split = copy.split().stats();
  return result;
}

}  // namespace ferry::snapshot
