// The destination side of a live migration: Prepare and Finish (migration_protocol.h). Runs on
// the thread of the link a peer opened; the VM arrives through the VM service's restore hook, so
// it is registered as running only once the guest resumed here.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/fault_point.h"
#include "crypto/owner_policy.h"
#include "migrate/migration_protocol.h"
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

// Checks what the source asks for, on this host's own authority.
Result<vm::VmSpec> CheckPrepare(const json& message, const crypto::HostIdentity& self) {
  if (message.value("type", "") != kMsgPrepare || !message.contains("spec")) {
    return Status::Corruption("the first message of a migration must be \"prepare\"");
  }
  FERRY_ASSIGN_OR_RETURN(vm::VmSpec spec, vm::VmSpec::FromJson(message["spec"]));
  if (!spec.policy.empty()) {
    FERRY_ASSIGN_OR_RETURN(crypto::OwnerPolicy policy,
                           crypto::ParsePolicy(spec.policy, "the policy of vm " + spec.name));
    FERRY_RETURN_IF_ERROR(crypto::CheckBoundTo(policy, spec.name));
    FERRY_RETURN_IF_ERROR(crypto::CheckMigrationAllowed(policy, self));
  }
  return spec;
}

// Receives the guest into a QEMU waiting with -incoming defer, then resumes it when the source
// says so. Returns the timings recorded in the VM.
Result<json> ReceiveGuest(PeerLink& link, vm::VmRuntime& rt) {
  FERRY_ASSIGN_OR_RETURN(StreamPair pair, NewStreamPair(kStreamBufferBytes));
  FERRY_RETURN_IF_ERROR(rt.QmpPassFd(kStreamFdName, pair.qemu.get())
                            .WithContext("handing QEMU the incoming migration stream"));
  pair.qemu = StreamFd();
  auto listening = rt.Qmp("migrate-incoming", {{"uri", std::string("fd:") + kStreamFdName}});
  if (!listening.ok()) return listening.status().WithContext("starting the incoming migration");
  const StreamFd& fd = pair.ferryd;
  FERRY_RETURN_IF_ERROR(link.SendMessage({{"type", kMsgPrepared}}));
  const auto started = std::chrono::steady_clock::now();
  FERRY_RETURN_IF_ERROR(PumpFromLink(link, fd, kStreamIdleTimeout));
  for (int i = 0;; ++i) {
    auto q = rt.Qmp("query-migrate");
    if (!q.ok()) return q.status().WithContext("after the migration stream");
    const std::string status = q->value("status", "");
    if (status == "completed") break;
    if (status == "failed" || i > 3000) {
      return Status::Unavailable("this host's QEMU did not load the migration stream (" + status +
                                 "): " + q->value("error-desc", std::string("?")));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  FERRY_RETURN_IF_ERROR(link.SendMessage({{"type", kMsgReceived}}));
  auto finish = link.ReceiveMessage(kFinishTimeout);
  if (!finish.ok()) return finish.status().WithContext("waiting for the source's finish");
  if (finish->value("type", "") != kMsgFinish) {
    return Status::Unavailable("the source did not finish: " +
                               finish->value("error", finish->value("type", std::string("?"))));
  }
  FaultPoint("migrate.destination.before_resume");
  auto resumed = rt.Qmp("cont");
  if (!resumed.ok()) return resumed.status().WithContext("resuming the migrated guest");
  FaultPoint("migrate.destination.after_resume");
  // The guest runs here from now on, whether or not the source hears it: a source that does
  // not asks again (a "query" on a new link) and finds it here.
  Status told = link.SendMessage({{"type", kMsgFinished}});
  if (!told.ok()) {
    spdlog::warn("the guest runs here, but the source was not told ({}); it will ask",
                 told.message());
  }
  const auto ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  return json{{"timings", {{"migration_receive_ms", ms}}}};
}

}  // namespace

void MigrationService::ServeIncoming(std::shared_ptr<PeerLink> link) {
  const std::string source = link->peer().host_id;
  auto message = link->ReceiveMessage(kFirstMessageTimeout);
  if (!message.ok()) {
    spdlog::warn("peer {}: no migration request: {}", source, message.status().message());
    return;
  }
  if (message->value("type", "") == kMsgQuery) return AnswerQuery(*link, *message);
  auto refuse = [&](const Status& why) {
    spdlog::warn("incoming migration from {}: {}", source, why.message());
    link->SendMessage(
        {{"type", kMsgFailed}, {"error", "host " + self().host_id + ": " + why.message()}});
    link->Close();
  };
  auto spec = CheckPrepare(*message, self());
  if (!spec.ok()) return refuse(spec.status());
  const std::string name = spec->name;

  vm::LaunchPlan plan;
  plan.mac = message->value("mac", "");
  plan.vmgenid = message->value("vmgenid", "");
  plan.incoming_migration = true;
  plan.origin = {{"migrated_from", source}, {"migration", message->value("migration", "")}};
  // The restore shares the link: it may outlive this call (WaitDone below gives up first).
  plan.restore = [link](vm::VmRuntime& rt, Operation& op) -> Result<json> {
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
