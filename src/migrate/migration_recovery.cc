// Settling a migration whose end the source did not see, and recovery after a ferryd restart
// (migration_protocol.h, "query"/"state" and "Recovery"): the source journals each outgoing
// migration in its registry; whatever ended the source ferryd or the link, the journal and one
// question to the destination decide which copy lives.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/fault_point.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_service.h"
#include "migrate/peer_connect.h"
#include "migrate/settle_plan.h"
#include "vm/vm_origin.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kConnectTimeout{10000};
// The destination answers once its own handling of the migration ended: its finish step waits
// at most a minute for the source, so this is long enough for any answer.
constexpr milliseconds kAnswerTimeout{90000};
constexpr milliseconds kAskInterval{2000};
constexpr int64_t kIncomingWaitMs = 75000;

}  // namespace

Status MigrationService::Journal(const std::string& id, const std::string& vm,
                                 const std::string& to, JournalPhase journal_phase) {
  const std::string phase = JournalPhaseName(journal_phase);
  Status st = FaultPointFails(("migrate.source.journal_" + phase).c_str())
                  ? Status::Internal("registry write refused (fault point)")
                  : journal_.Put(id, JournalRow{vm, to, journal_phase});
  if (!st.ok()) {
    spdlog::error("migration {} of vm {}: cannot journal: {}", id, vm, st.message());
    return Status::FromCode(st.code(), "cannot journal the " + phase + " phase in the registry (" +
                                           st.message() + "); without it a restart could not " +
                                           "recover the migration, so it stops here");
  }
  return Status::Ok();
}

void MigrationService::Unjournal(const std::string& id) { journal_.Delete(id); }

std::string MigrationService::PeerAddress(const std::string& host_id) {
  auto peer = peers_.Find(host_id);
  return peer.ok() && peer->has_value() ? (*peer)->address : "";
}

void MigrationService::RollBack(vm::VmRuntime& rt, const std::string& vm) {
  // A running migration is cancelled (the guest never stopped); a completed one (guest paused
  // in postmigrate) is resumed.
  for (int i = 0; i < 100; ++i) {
    auto q = qemu::QueryMigrate(rt);
    if (!q.ok() || !q->InProgress()) break;
    if (q->state != qemu::MigrationState::kCancelling) (void)qemu::MigrateCancel(rt);
    std::this_thread::sleep_for(milliseconds(20));
  }
  auto st = qemu::QueryStatus(rt);
  if (st.ok() && !st->running) {
    Status resumed = qemu::Cont(rt);
    if (!resumed.ok()) {
      spdlog::error("vm {}: could not resume after a failed migration: {}", vm, resumed.message());
    }
  }
}

Status MigrationService::RollBackHere(const std::string& vm, const std::string& op_id) {
  auto lease = vms_.Lease(vm, op_id);
  if (!lease.ok()) return lease.status().WithContext("resuming vm " + vm + " here");
  RollBack(*lease->runtime, vm);
  lease->release(json::object());
  return Status::Ok();
}

Result<SettledState> MigrationService::AskDestination(const std::string& to, const std::string& id,
                                                      const std::string& vm) {
  return Ask(to, QueryRequest{id, vm});
}

Result<SettledState> MigrationService::AskAboutHold(const std::string& to, const std::string& id,
                                                    const std::string& vm) {
  return Ask(to, HoldQueryRequest{id, vm});
}

Result<std::unique_ptr<PeerLink>> MigrationService::ConnectToHost(
    const std::string& host_id, std::chrono::milliseconds timeout) {
  const std::string address = PeerAddress(host_id);
  if (address.empty()) {
    return Status::NotFound("host " + host_id + " is not a known peer; add it with ferry peer add " +
                            host_id + " ADDRESS:PORT");
  }
  return ConnectToPeer(address, *tls_, host_id, timeout);
}

Result<SettledState> MigrationService::Ask(const std::string& to, const PeerMessage& query) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<PeerLink> link, ConnectToHost(to, kConnectTimeout));
  FERRY_RETURN_IF_ERROR(SendPeerMessage(*link, query));
  auto answer = ExpectPeerMessage<StateReply>(*link, kAnswerTimeout, "the answer to a query");
  link->Close();
  if (!answer.ok()) return answer.status().WithContext("asking host " + to);
  return answer->state;
}

Result<SettledState> MigrationService::Settle(const std::string& id, const std::string& vm,
                                              const std::string& to, Clock::time_point deadline) {
  Status last = Status::Unavailable("not asked yet");
  while (!stopping_.load()) {
    auto state = AskDestination(to, id, vm);
    const SettleStep step = StepOnAnswer(state);
    if (step == SettleStep::kDropCopyHere) {
      Status deleted = vms_.Delete(vm, /*force=*/true, /*holder=*/id);
      if (!deleted.ok() && vms_.Exists(vm)) {
        return deleted.WithContext("host " + to + " runs vm " + vm + "; removing the copy here");
      }
      Unjournal(id);
      spdlog::info("migration {}: host {} runs vm {}; the copy here is gone", id, to, vm);
      return *state;
    }
    if (step == SettleStep::kResumeHere) {
      FERRY_RETURN_IF_ERROR(RollBackHere(vm, id));
      Unjournal(id);
      spdlog::info("migration {}: host {} holds no copy of vm {}; it runs here again", id, to, vm);
      return *state;
    }
    last =
        state.ok() ? Status::Unavailable("host " + to + " has not settled it yet") : state.status();
    if (Clock::now() + kAskInterval >= deadline) {
      return Status::Unavailable("whether vm " + vm + " runs on host " + to +
                                 " is not known yet (" + last.message() + ")");
    }
    std::this_thread::sleep_for(kAskInterval);
  }
  return Status::Cancelled("ferryd is stopping; vm " + vm + " stays paused until it asks again");
}

void MigrationService::SettleInBackground(const std::string& id, const std::string& vm,
                                          const std::string& to, std::shared_ptr<Operation> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++settling_;
  }
  vms_.InBackground([this, id, vm, to, op] {
    // Until the destination answers, the source copy stays paused: never resumed on a guess.
    while (!stopping_.load()) {
      auto settled = Settle(id, vm, to, Clock::now() + std::chrono::minutes(1));
      if (settled.ok() || !vms_.Exists(vm)) {
        if (op && settled.ok() && *settled == SettledState::kRunning) {
          op->Succeed({{"vm", vm}, {"to", to}, {"settled_later", true}});
        } else if (op) {
          op->Fail(settled.ok()
                       ? Status::Unavailable("migration of vm " + vm + " to " + to + ": host " +
                                             to + " did not resume it; it runs here again")
                       : settled.status());
        }
        break;
      }
      spdlog::warn("migration {}: {}; vm {} stays paused here, asking again", id,
                   settled.status().message(), vm);
    }
    std::lock_guard<std::mutex> lock(mu_);
    --settling_;
    settled_cv_.notify_all();
  });
}

void MigrationService::RecoverOnStart() {
  auto journal = journal_.List([](const Status& damaged) {
    spdlog::error("migrations: {}; left as it is", damaged.message());
    return true;
  });
  if (!journal.ok()) return;
  for (const auto& [id, entry] : *journal) {
    const std::string& vm = entry.vm;
    const std::string& to = entry.to;
    const RecoveryPlan plan = PlanRecovery(entry, vms_.Exists(vm));
    if (plan == RecoveryPlan::kForget) {
      Unjournal(id);
      continue;
    }
    auto op = vms_.operations().Start("migrate", vm);
    if (plan == RecoveryPlan::kRollBack) {
      // QEMU's stream went into the ferryd that died: the destination never resumed the guest.
      Status rolled = RollBackHere(vm, op->id());
      if (!rolled.ok()) spdlog::error("migration {}: {}", id, rolled.message());
      Unjournal(id);
      spdlog::warn(
          "migration {} of vm {} to {}: ferryd restarted while sending; rolled back, "
          "the VM runs here",
          id, vm, to);
      op->Fail(Status::Unavailable("migration of vm " + vm + " to " + to +
                                   ": ferryd restarted while sending the VM; rolled back, it "
                                   "runs on this host"));
      continue;
    }
    // "finish" was sent, or about to be: only the destination knows whether it resumed. Until
    // it answers, the migration holds the copy here (released by the roll-back, or deleted).
    auto held = vms_.Lease(vm, id);
    if (!held.ok())
      spdlog::warn("migration {}: cannot hold vm {}: {}", id, vm, held.status().message());
    op->SetPhase("settling with " + to + " after a ferryd restart", 95);
    SettleInBackground(id, vm, to, op);
  }
}

void MigrationService::AnswerQuery(PeerLink& link, const QueryRequest& query) {
  const std::string &vm = query.vm, &id = query.migration;
  // This host's own handling of the migration ends first: its outcome is the answer.
  for (const auto& op : vms_.operations().List()) {
    json j = op->ToJson();
    if (j.value("kind", "") == "migrate-in" && j.value("target", "") == vm &&
        j.value("state", "") == "running") {
      op->WaitDone(kIncomingWaitMs);
    }
  }
  auto shown = vms_.Show(vm);
  const vm::VmOrigin origin =
      vm::OriginFromJson(shown.ok() ? shown->value("origin", json::object()) : json::object());
  const SettledState state =
      AnswerForQuery(id, shown.ok() ? shown->value("state", "") : std::string(), origin);
  spdlog::info("peer {} asked about migration {} of vm {}: {}", link.peer().host_id, id, vm,
               SettledStateName(state));
  SendPeerMessage(link, StateReply{state});
  link.Close();
}

}  // namespace ferry::migrate
