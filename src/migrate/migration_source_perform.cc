// Perform (migration_protocol.h): QEMU precopies into ferryd's end of a socket pair; ferryd
// carries the bytes to the destination as data frames, then a stream end. The guest stops only
// when the precopy completes.
#include <algorithm>
#include <thread>

#include "core/fault_point.h"
#include "core/guarded_thread.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_source.h"
#include "qemu/qmp_commands.h"

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
  FERRY_RETURN_IF_ERROR(ConfigureQemuMigration());
  FERRY_RETURN_IF_ERROR(StartQemuMigration());
  FaultPoint("migrate.source.sending");
  FERRY_RETURN_IF_ERROR(CarryStream());
  FERRY_ASSIGN_OR_RETURN(qemu_result_, AwaitQemuCompletion());
  if (Cancelled()) return Status::Cancelled("the migration was cancelled");
  FERRY_RETURN_IF_ERROR(link_->SendStreamEnd());
  return ExpectPeerMessage<ReceivedReply>(*link_, kReplyTimeout, "the destination's received")
      .status();
}

Status MigrationService::MigrationSource::ConfigureQemuMigration() {
  vm::VmRuntime& rt = *lease_->runtime;
  FERRY_RETURN_IF_ERROR(
      qemu::SetMigrationCapabilities(rt, {{"auto-converge", true},
                                          {"x-ignore-shared", false},
                                          {"pause-before-switchover", false}}));
  return qemu::SetMigrationParameters(rt, {downtime_ms_, kUnlimitedBandwidth});
}

Status MigrationService::MigrationSource::StartQemuMigration() {
  vm::VmRuntime& rt = *lease_->runtime;
  FERRY_ASSIGN_OR_RETURN(StreamPair pair, NewStreamPair(kStreamBufferBytes));
  stream_ = std::move(pair.ferryd);
  Status passed = rt.QmpPassFd(kStreamFdName, pair.qemu.get());
  pair.qemu = StreamFd();  // QEMU holds its own copy: EOF on ours means QEMU closed it
  FERRY_RETURN_IF_ERROR(passed);
  started_ = Clock::now();
  // Journaled before the guest can stop: a ferryd restarted from here on rolls it back.
  FERRY_RETURN_IF_ERROR(
      service_.Journal(op_->id(), request_.vm, request_.to, JournalPhase::kPerform));
  return qemu::Migrate(rt, std::string("fd:") + kStreamFdName);
}

Status MigrationService::MigrationSource::CarryStream() {
  // Progress comes from QEMU's own counters, polled beside the pump.
  std::atomic<bool> pumping{true};
  auto progress = StartGuardedThread("migration " + op_->id() + " progress",
                                     [this, &pumping] { ReportProgress(pumping); });
  if (!progress.ok()) return progress.status();
  Status pumped = PumpToLink(stream_, *link_, *cancel_, nullptr);
  pumping.store(false);
  progress->join();
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
  for (int i = 0; i < 500; ++i) {  // QEMU closes the stream just before it says so
    FERRY_ASSIGN_OR_RETURN(qemu::MigrationInfo q, qemu::QueryMigrate(rt));
    if (q.state == qemu::MigrationState::kCompleted) return q.raw;
    if (q.state == qemu::MigrationState::kFailed || q.state == qemu::MigrationState::kCancelled) {
      return Status::Unavailable("QEMU's precopy " + q.status + ": " +
                                 (q.error_desc.empty() ? "no reason" : q.error_desc));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return Status::DeadlineExceeded("QEMU did not complete");
}

}  // namespace ferry::migrate
