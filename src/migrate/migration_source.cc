// The source side of a live migration: the phases in order, and what a failure in each undoes
// (migration_source.h).
#include "migrate/migration_source.h"

#include <spdlog/spdlog.h>

#include "migrate/migration_messages.h"

namespace ferry::migrate {

using nlohmann::json;

std::string MigrationMib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

void MigrationService::RunSource(const MigrateRequest& request,
                                 const std::shared_ptr<Operation>& op) {
  std::shared_ptr<std::atomic<bool>> cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel = cancels_[op->id()];
  }
  MigrationSource source(*this, request, op, cancel);
  Result<json> outcome = source.Run();
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.erase(op->id());
  }
  if (!outcome.ok()) {
    const std::string what = "migration of vm " + request.vm + " to " + request.to;
    spdlog::warn("{}: {}", what, outcome.status().message());
    return op->Fail(outcome.status().WithContext(what));
  }
  op->Succeed(*outcome);
}

MigrationService::MigrationSource::MigrationSource(MigrationService& service,
                                                   const MigrateRequest& request,
                                                   std::shared_ptr<Operation> op,
                                                   std::shared_ptr<std::atomic<bool>> cancel)
    : service_(service),
      request_(request),
      op_(std::move(op)),
      cancel_(std::move(cancel)),
      what_("migration of vm " + request.vm + " to " + request.to) {}

Result<json> MigrationService::MigrationSource::Run() {
  Status st = Begin();
  if (st.ok()) st = Prepare();
  if (st.ok()) st = Perform();
  if (st.ok()) st = Finish();
  if (!st.ok()) {
    FERRY_RETURN_IF_ERROR(Recover(st));
  }
  if (!settled_there_) Confirm();
  json out = Summary();
  spdlog::info("{}: done in {} ms, downtime {} ms, {} on the wire", what_,
               out["total_ms"].get<int64_t>(), out["downtime_ms"].get<int64_t>(),
               MigrationMib(wire_.wire_bytes_sent));
  return out;
}

Status MigrationService::MigrationSource::Recover(const Status& why) {
  switch (stage_) {
    case Stage::kBegin:
    case Stage::kPrepare:
      break;
    case Stage::kPrepared:
      // The destination waits for the stream: it drops its QEMU when told to abort.
      SendPeerMessage(*link_, AbortBecause(why.message()));
      break;
    case Stage::kPerform:
      // The guest stops only when QEMU's precopy completes: until "finish" it runs here again.
      SendPeerMessage(*link_, AbortBecause(why.message()));
      CloseLink();
      // The disk copy only ever read the disk here: stopping it leaves the disk as it was.
      if (mirror_) mirror_->Abandon();
      RollBack(*lease_->runtime, request_.vm);
      service_.Unjournal(op_->id());
      break;
    case Stage::kFinish:
      return SettleAfterFailedFinish(why);
    case Stage::kConfirm:
      return Status::Ok();
  }
  CloseLink();
  ReleaseLease();
  return why;
}

Status MigrationService::MigrationSource::SettleAfterFailedFinish(const Status& why) {
  // The destination may or may not have resumed: resuming here on a guess could make two
  // copies. Ask it on a new link; until it answers, the copy here stays paused, leased.
  const std::string& name = request_.vm;
  const std::string& to = request_.to;
  op_->SetPhase("finish: asking " + to + " whether the guest runs there", 96);
  auto settled = service_.Settle(op_->id(), name, to, Clock::now() + kSettleTimeout);
  if (settled.ok() && *settled == SettledState::kAbsent) {
    return Status::Unavailable("host " + to + " did not resume the guest (" + why.message() +
                               "); it runs here again");
  }
  if (!settled.ok()) {
    service_.SettleInBackground(op_->id(), name, to, nullptr);
    return Status::Unavailable("the destination did not confirm that the guest runs (" +
                               why.message() + "), nor " + settled.status().message() +
                               "; the copy here stays paused while ferryd keeps asking " + to +
                               " (ferry vm show " + name + ")");
  }
  spdlog::info("{}: {} confirmed on a second link that the guest runs there", what_, to);
  settled_there_ = true;
  return Status::Ok();
}

void MigrationService::MigrationSource::CloseLink() {
  if (link_) link_->Close();
}

void MigrationService::MigrationSource::ReleaseLease() {
  if (lease_) lease_->release(json::object());
}

}  // namespace ferry::migrate
