// Finish (migration_protocol.h): "finish" tells the destination to resume the guest. From here
// on only the destination may run it; the source never resumes its copy by itself.
#include "core/fault_point.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_source.h"

namespace ferry::migrate {

Status MigrationService::MigrationSource::Finish() {
  op_->SetPhase("finish on " + request_.to, 95);
  // Journaled before "finish" is sent: a source that cannot record it must not let the
  // destination resume (a restart could not tell whether the guest runs there). Until then a
  // failure is still Perform's.
  FERRY_RETURN_IF_ERROR(
      service_.Journal(op_->id(), request_.vm, request_.to, JournalPhase::kFinish));
  stage_ = Stage::kFinish;
  Status st = SendPeerMessage(*link_, FinishRequest{});
  FaultPoint("migrate.source.after_finish");
  if (st.ok()) {
    st = ExpectPeerMessage<FinishedReply>(*link_, kReplyTimeout, "the destination's finished")
             .status();
  }
  wire_ = link_->counters();
  link_->Close();
  // The lease stays held until the migration is settled: until then the paused copy here must
  // not be resumed, snapshotted or migrated again. Settling rolls it back (and releases it) or
  // deletes it under this operation's id.
  return st;
}

}  // namespace ferry::migrate
