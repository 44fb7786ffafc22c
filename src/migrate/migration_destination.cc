// The destination side of a live migration: Prepare and Finish (migration_protocol.h). Runs on
// the thread of the link a peer opened; the VM arrives through the VM service's restore hook, so
// it is registered as running only once the guest resumed here.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/fault_point.h"
#include "migrate/destination_checks.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_service.h"
#include "migrate/qemu_stream.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kFirstMessageTimeout{30000};
constexpr milliseconds kStreamIdleTimeout{60000};
constexpr milliseconds kFinishTimeout{60000};
constexpr int64_t kOperationTimeoutMs = 3'600'000;

// Receives the guest into a QEMU waiting with -incoming defer, then resumes it when the source
// says so. Returns the timings recorded in the VM.
Result<vm::RestoredGuest> ReceiveGuest(PeerLink& link, vm::VmRuntime& rt) {
  FERRY_ASSIGN_OR_RETURN(StreamPair pair, NewStreamPair(kStreamBufferBytes));
  FERRY_RETURN_IF_ERROR(rt.QmpPassFd(kStreamFdName, pair.qemu.get())
                            .WithContext("handing QEMU the incoming migration stream"));
  pair.qemu = StreamFd();
  Status listening = qemu::MigrateIncoming(rt, std::string("fd:") + kStreamFdName);
  if (!listening.ok()) return listening.WithContext("starting the incoming migration");
  const StreamFd& fd = pair.ferryd;
  FERRY_RETURN_IF_ERROR(SendPeerMessage(link, PreparedReply{}));
  const auto started = std::chrono::steady_clock::now();
  FERRY_RETURN_IF_ERROR(PumpFromLink(link, fd, kStreamIdleTimeout));
  for (int i = 0;; ++i) {
    auto q = qemu::QueryMigrate(rt);
    if (!q.ok()) return q.status().WithContext("after the migration stream");
    if (q->state == qemu::MigrationState::kCompleted) break;
    if (q->state == qemu::MigrationState::kFailed || i > 3000) {
      return Status::Unavailable("this host's QEMU did not load the migration stream (" +
                                 q->status + "): " + (q->error_desc.empty() ? "?" : q->error_desc));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  FERRY_RETURN_IF_ERROR(SendPeerMessage(link, ReceivedReply{}));
  FERRY_RETURN_IF_ERROR(
      ExpectPeerMessage<FinishRequest>(link, kFinishTimeout, "the source's finish")
          .status()
          .WithContext("the source did not finish"));
  FaultPoint("migrate.destination.before_resume");
  Status resumed = qemu::Cont(rt);
  if (!resumed.ok()) return resumed.WithContext("resuming the migrated guest");
  FaultPoint("migrate.destination.after_resume");
  // The guest runs here from now on, whether or not the source hears it: a source that does
  // not asks again (a "query" on a new link) and finds it here.
  Status told = SendPeerMessage(link, FinishedReply{});
  if (!told.ok()) {
    spdlog::warn("the guest runs here, but the source was not told ({}); it will ask",
                 told.message());
  }
  const auto ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  vm::RestoredGuest received;
  received.timings = {{"migration_receive_ms", ms}};
  return received;
}

}  // namespace

void MigrationService::ServeIncoming(std::shared_ptr<PeerLink> link) {
  const std::string source = link->peer().host_id;
  std::string vm_name = "?";
  auto refuse = [&](const Status& why) {
    spdlog::warn("incoming migration of vm {} from host {} refused: {}", vm_name, source,
                 why.message());
    SendPeerMessage(*link, FailedBecause("host " + self().host_id + ": " + why.message()));
    link->Close();
  };
  auto message = ReceivePeerMessage(*link, kFirstMessageTimeout);
  if (!message.ok()) {
    if (!link->open()) {
      spdlog::warn("peer {}: no migration request: {}", source, message.status().message());
      return;
    }
    return refuse(message.status());
  }
  if (auto* query = std::get_if<QueryRequest>(&*message)) return AnswerQuery(*link, *query);
  if (auto* hold_query = std::get_if<HoldQueryRequest>(&*message)) {
    IncomingHolds* holds = incoming_holds_.load();
    const SettledState state = holds ? holds->HoldSettled(*hold_query) : SettledState::kUnsettled;
    spdlog::info("peer {} asked about hold transfer {} of vm {}: {}", source,
                 hold_query->migration, hold_query->vm, SettledStateName(state));
    SendPeerMessage(*link, StateReply{state});
    link->Close();
    return;
  }
  if (auto* hold = std::get_if<HoldPrepareRequest>(&*message)) {
    vm_name = hold->vm;
    IncomingHolds* holds = incoming_holds_.load();
    if (holds == nullptr) {
      return refuse(Status::FailedPrecondition("this host keeps no holds (its ferryd has no "
                                               "store)"));
    }
    holds->ReceiveHold(*link, *hold);
    link->Close();
    return;
  }
  auto* prepare = std::get_if<PrepareRequest>(&*message);
  if (prepare == nullptr) {
    return refuse(Status::Corruption(std::string("the first message of a migration must be "
                                                 "\"prepare\", not \"") +
                                     MessageType(*message) + "\""));
  }
  vm_name = prepare->spec.name;
  auto spec = CheckIncoming(*prepare, self(), config_);
  if (!spec.ok()) return refuse(spec.status());
  const std::string name = spec->name;

  vm::IncomingMigrationLaunch plan;
  plan.mac = prepare->mac.ToString();
  if (prepare->vmgenid) plan.vmgenid = prepare->vmgenid->ToString();
  plan.origin = vm::MigrationOrigin{source, prepare->migration};
  // The restore shares the link: it may outlive this call (WaitDone below gives up first).
  plan.restore = [link](vm::VmRuntime& rt, Operation& op) -> Result<vm::RestoredGuest> {
    op.SetPhase("receiving from " + link->peer().host_id, 50);
    return ReceiveGuest(*link, rt);
  };
  auto op = vms_.CreateFrom(std::move(spec).value(), std::move(plan), /*wait_ready=*/false);
  if (!op.ok()) return refuse(op.status());
  (*op)->WaitDone(kOperationTimeoutMs);
  json result = (*op)->ToJson();
  if (result.value("state", "") != "succeeded") {
    const std::string why = result.value("error", json::object()).value("message", "failed");
    return refuse(Status::Unavailable(why));
  }
  spdlog::info("vm {}: arrived from {} and runs here", name, source);
  link->Close();
}

}  // namespace ferry::migrate
