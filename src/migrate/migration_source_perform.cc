// Perform (migration_protocol.h): QEMU precopies into ferryd's end of a socket pair; ferryd
// carries the bytes to the destination as data frames, then a stream end. The guest stops only
// when the precopy completes.
#include <algorithm>
#include <optional>
#include <thread>

#include "core/fault_point.h"
#include "core/guarded_thread.h"
#include "core/thread_priority.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_source.h"
#include "qemu/qmp_commands.h"
#include "vm/vm_paths.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kUnlimitedBandwidth = int64_t{1} << 40;  // bytes/s: no throttle in practice

}  // namespace

Status MigrationService::MigrationSource::Perform() {
  stage_ = Stage::kPerform;
  op_->SetPhase("perform", 10);
  downtime_ms_ =
      request_.downtime_ms > 0 ? request_.downtime_ms : service_.config_.default_downtime_ms;
  if (disk_token_) FERRY_RETURN_IF_ERROR(MirrorDisk());
  FERRY_RETURN_IF_ERROR(ConfigureQemuMigration());
  FERRY_RETURN_IF_ERROR(StartQemuMigration());
  FaultPoint("migrate.source.sending");
  FERRY_RETURN_IF_ERROR(CarryStream());
  // The progress thread, joined: a failed switchover cancelled QEMU's migration.
  FERRY_RETURN_IF_ERROR(switchover_failure_);
  FERRY_ASSIGN_OR_RETURN(qemu_result_, AwaitQemuCompletion());
  if (Cancelled()) return Status::Cancelled("the migration was cancelled");
  FERRY_RETURN_IF_ERROR(link_->SendStreamEnd());
  return ExpectPeerMessage<ReceivedReply>(*link_, kReplyTimeout, "the destination's received")
      .status();
}

Status MigrationService::MigrationSource::MirrorDisk() {
  vm::VmRuntime& rt = *lease_->runtime;
  const std::string what = "disk of vm " + request_.vm;
  op_->SetPhase("perform: copying the disk", 10);
  started_ = Clock::now();
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<PeerLink> link,
                         service_.ConnectToHost(request_.to, kConnectTimeout));
  const std::string key_dir =
      vm::VmPaths::For(service_.vms_.config().state_dir, request_.vm).dir + "/nbd-tls";
  FERRY_ASSIGN_OR_RETURN(mirror_,
                         DiskMirror::Start(rt, *link, op_->id(), *disk_token_, key_dir, what));
  FaultPoint("migrate.source.mirroring");
  auto progress = [this](uint64_t copied, uint64_t total) {
    op_->SetPhase("perform: disk " + MigrationMib(copied) + " of " + MigrationMib(total), 10);
  };
  FERRY_RETURN_IF_ERROR(
      mirror_->AwaitReady(progress, [this] { return !Cancelled() && link_->open(); }));
  disk_copy_ms_ = std::chrono::duration_cast<milliseconds>(Clock::now() - started_).count();
  // The destination's QEMU waits for its memory stream only from here.
  return SendPeerMessage(*link_, DiskReadyRequest{});
}

void MigrationService::MigrationSource::AwaitSwitchover(const std::atomic<bool>& pumping) {
  // However this ends, the copy of QEMU's end goes with it: the pump waits for EOF.
  struct ReleaseQemuEnd {
    StreamFd& fd;
    ~ReleaseQemuEnd() { fd = StreamFd(); }
  } release{qemu_stream_end_};
  while (pumping.load()) {
    auto event = switchover_events_->Wait(milliseconds(100));
    if (!event.ok()) {
      if (event.status().code() != Status::Code::kDeadlineExceeded) return;  // QMP is gone
      // An event missed would leave the guest stopped: look as well, now and then.
      auto q = qemu::QueryMigrate(*lease_->runtime);
      if (q.ok() && q->state == qemu::MigrationState::kPreSwitchover) return SwitchDiskOver();
      if (q.ok() && (q->state == qemu::MigrationState::kFailed ||
                     q->state == qemu::MigrationState::kCancelled)) {
        return;
      }
      continue;
    }
    auto state = qemu::ParseMigrationEvent(event->data);
    if (!state.ok()) continue;  // not a state: query-migrate above looks in time
    if (*state == qemu::MigrationState::kPreSwitchover) return SwitchDiskOver();
    if (*state == qemu::MigrationState::kFailed || *state == qemu::MigrationState::kCancelled) {
      return;  // QEMU closed its end
    }
  }
}

void MigrationService::MigrationSource::SwitchDiskOver() {
  vm::VmRuntime& rt = *lease_->runtime;
  FaultPoint("migrate.source.switchover");
  const auto seen = Clock::now();
  auto us_since_seen = [&seen] {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - seen).count();
  };
  Status done = mirror_->Complete();
  switchover_seen_to_disk_done_us_ = us_since_seen();
  if (done.ok()) WidenStreamForLastPass();
  if (done.ok()) done = qemu::MigrateContinueFromPreSwitchover(rt);
  switchover_seen_to_continued_us_ = us_since_seen();
  if (done.ok()) return mirror_->ReleaseTarget();
  switchover_failure_ = done.WithContext("at the switchover");
  (void)qemu::MigrateCancel(rt);
}

void MigrationService::MigrationSource::WidenStreamForLastPass() {
  // The destination's flush (vm_stop's) is answered and the copy ended: nothing waits for the
  // destination to catch up any more, and QEMU's last pass is downtime until it is in the
  // kernel (the same socket as QEMU's descriptor, so its buffer is QEMU's).
  SetStreamBuffer(qemu_stream_end_, kStreamBufferBytes);
  qemu_stream_end_ = StreamFd();
}

Status MigrationService::MigrationSource::ConfigureQemuMigration() {
  vm::VmRuntime& rt = *lease_->runtime;
  // With a disk, QEMU stops the guest and waits before its last memory pass: the disk copy ends
  // in step there (SwitchDiskOver), and only then the device state goes.
  FERRY_RETURN_IF_ERROR(
      qemu::SetMigrationCapabilities(rt, {{"auto-converge", true},
                                          {"x-ignore-shared", false},
                                          {"events", mirror_ != nullptr},
                                          {"pause-before-switchover", mirror_ != nullptr}}));
  FERRY_RETURN_IF_ERROR(qemu::SetMigrationParameters(rt, {downtime_ms_, kUnlimitedBandwidth}));
  // Read back for the summary only: a QEMU that cannot say leaves it out.
  auto parameters = rt.Qmp("query-migrate-parameters", json::object(), milliseconds(5000));
  auto capabilities = rt.Qmp("query-migrate-capabilities", json::object(), milliseconds(5000));
  if (parameters.ok()) qemu_settings_["parameters"] = *parameters;
  if (capabilities.ok()) qemu_settings_["capabilities"] = *capabilities;
  return Status::Ok();
}

Status MigrationService::MigrationSource::StartQemuMigration() {
  vm::VmRuntime& rt = *lease_->runtime;
  // Watched before QEMU can reach it: the guest waits stopped at pre-switchover until then.
  if (mirror_) {
    FERRY_ASSIGN_OR_RETURN(switchover_events_, rt.WatchQmpEvent("MIGRATION"));
  }
  FERRY_ASSIGN_OR_RETURN(StreamPair pair,
                         NewStreamPair(mirror_ ? kStreamBufferWithDiskBytes : kStreamBufferBytes));
  stream_ = std::move(pair.ferryd);
  Status passed = rt.QmpPassFd(kStreamFdName, pair.qemu.get());
  // QEMU holds its own copy: EOF on ours means QEMU closed it (and, with a disk, the switchover
  // thread closed the copy kept for WidenStreamForLastPass).
  if (mirror_) qemu_stream_end_ = std::move(pair.qemu);
  pair.qemu = StreamFd();
  FERRY_RETURN_IF_ERROR(passed);
  // With a disk the clock started at its copy: the total is the whole move.
  if (!mirror_) started_ = Clock::now();
  // Journaled before the guest can stop: a ferryd restarted from here on rolls it back.
  FERRY_RETURN_IF_ERROR(
      service_.Journal(op_->id(), request_.vm, request_.to, JournalPhase::kPerform));
  return qemu::Migrate(rt, std::string("fd:") + kStreamFdName);
}

Status MigrationService::MigrationSource::CarryStream() {
  // The pump, and the switchover it starts, run ahead of the guests (thread_priority.h).
  const ThreadPriorityBoost boost;
  // Progress comes from QEMU's own counters, polled beside the pump.
  std::atomic<bool> pumping{true};
  auto progress = StartGuardedThread("migration " + op_->id() + " progress",
                                     [this, &pumping] { ReportProgress(pumping); });
  if (!progress.ok()) return progress.status();
  std::optional<std::thread> switchover;
  if (mirror_) {
    auto started = StartGuardedThread("migration " + op_->id() + " switchover",
                                      [this, &pumping] { AwaitSwitchover(pumping); });
    if (started.ok()) switchover = std::move(*started);
    if (!started.ok()) {
      qemu_stream_end_ = StreamFd();
      (void)qemu::MigrateCancel(*lease_->runtime);
    }
  }
  Status pumped = PumpToLink(stream_, *link_, *cancel_, nullptr);
  pumping.store(false);
  progress->join();
  if (switchover) switchover->join();
  return pumped;
}

void MigrationService::MigrationSource::ReportProgress(const std::atomic<bool>& pumping) {
  vm::VmRuntime& rt = *lease_->runtime;
  while (pumping.load()) {
    auto q = qemu::QueryMigrate(rt);
    if (q.ok() && q->has_ram) {
      const uint64_t total = q->ram_total;
      const uint64_t remaining = q->ram_remaining;
      int pct =
          total ? static_cast<int>(10 + 80 * (total - std::min(total, remaining)) / total) : 10;
      op_->SetPhase("perform: " + MigrationMib(q->ram_transferred) + " sent, " +
                        MigrationMib(remaining) + " left, " +
                        std::to_string(static_cast<int>(q->ram_mbps)) + " Mbit/s, dirty " +
                        std::to_string(q->dirty_pages_rate) + " pages/s, " + q->status,
                    std::min(pct, 90));
    }
    for (int i = 0; i < 5 && pumping.load(); ++i) std::this_thread::sleep_for(milliseconds(50));
  }
}

Result<json> MigrationService::MigrationSource::AwaitQemuCompletion() {
  vm::VmRuntime& rt = *lease_->runtime;
  std::optional<json> completed;
  for (int i = 0; i < 500; ++i) {  // QEMU closes the stream just before it says so
    FERRY_ASSIGN_OR_RETURN(qemu::MigrationInfo q, qemu::QueryMigrate(rt));
    if (q.state == qemu::MigrationState::kCompleted) {
      // QEMU 7.2 says completed a moment before it fills in total-time and downtime (0 until
      // then): the summary reports them, so wait for them, briefly.
      auto total = q.raw.find("total-time");
      if (total != q.raw.end() && total->is_number_integer() && total->get<int64_t>() > 0) {
        return q.raw;
      }
      completed = q.raw;
      std::this_thread::sleep_for(milliseconds(1));
      continue;
    }
    if (q.state == qemu::MigrationState::kFailed || q.state == qemu::MigrationState::kCancelled) {
      return Status::Unavailable("QEMU's precopy " + q.status + ": " +
                                 (q.error_desc.empty() ? "no reason" : q.error_desc));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (completed) return *completed;
  return Status::DeadlineExceeded("QEMU did not complete");
}

}  // namespace ferry::migrate
