// The source side of a live migration: Begin, Perform and Confirm (migration_protocol.h).
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/fault_point.h"
#include "core/guarded_thread.h"
#include "crypto/owner_policy.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_service.h"
#include "migrate/peer_connect.h"
#include "migrate/qemu_stream.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kConnectTimeout{10000};
constexpr milliseconds kPrepareTimeout{120000};
constexpr milliseconds kReplyTimeout{60000};
constexpr milliseconds kSettleTimeout{30000};
constexpr int64_t kUnlimitedBandwidth = int64_t{1} << 40;  // bytes/s: no throttle in practice

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The owner the VM was pinned to when it was created, sent beside its policy so that the
// destination sees a policy swapped on the way.
std::string PinnedOwner(const vm::VmRecord& rec, const std::optional<crypto::OwnerPolicy>& policy) {
  // The owner pinned when the VM was created; a record from before owners were pinned falls back
  // to the key that signed the policy in force.
  if (!rec.owner.empty()) return rec.owner;
  return policy ? policy->owner_fingerprint : "";
}

}  // namespace

void MigrationService::RunSource(const MigrateRequest& request,
                                 const std::shared_ptr<Operation>& op) {
  const std::string& name = request.vm;
  const std::string what = "migration of vm " + name + " to " + request.to;
  std::shared_ptr<std::atomic<bool>> cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel = cancels_[op->id()];
  }
  auto finish = [&](const Status& st) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancels_.erase(op->id());
    }
    if (!st.ok()) {
      spdlog::warn("{}: {}", what, st.message());
      op->Fail(st.WithContext(what));
    }
  };

  // Begin: who is the destination, and does the owner allow it?
  op->SetPhase("begin", 2);
  const std::string address = PeerAddress(request.to);
  if (address.empty()) {
    return finish(Status::NotFound("host " + request.to +
                                   " is not a known peer; add it with ferry peer add " +
                                   request.to + " ADDRESS:PORT"));
  }
  auto lease = vms_.Lease(name, op->id());
  if (!lease.ok()) return finish(lease.status());
  auto release = [&] { lease->release(json::object()); };
  const vm::VmRecord& rec = lease->record;
  if (!rec.disk_path.empty()) {
    release();
    return finish(Status::FailedPrecondition(
        "vm " + name + " has a data disk; moving disks between hosts is not supported yet"));
  }
  std::optional<crypto::OwnerPolicy> policy;
  if (!rec.spec.policy.empty()) {
    auto parsed = crypto::ParsePolicy(rec.spec.policy, "the policy of vm " + name);
    if (!parsed.ok()) {
      release();
      return finish(parsed.status());
    }
    policy = *parsed;
  }
  auto link_or = ConnectToPeer(address, *tls_, request.to, kConnectTimeout);
  if (!link_or.ok()) {
    release();
    return finish(link_or.status());
  }
  std::unique_ptr<PeerLink> link = std::move(link_or).value();
  if (policy) {
    // The destination's identity as its certificate proves it, never as it says.
    Status allowed = crypto::CheckMigrationAllowed(*policy, link->peer());
    if (!allowed.ok()) {
      link->Close();
      release();
      return finish(allowed);
    }
  }
  vm::VmRuntime& rt = *lease->runtime;
  auto guid = qemu::QueryVmGenerationId(rt);
  // Prepare on the destination.
  op->SetPhase("prepare on " + request.to, 5);
  Status st = Status::Ok();
  auto mac = MacAddress::Parse(rec.mac, "the MAC of vm " + name);
  if (!mac.ok()) st = mac.status();
  if (st.ok()) {
    PrepareRequest prepare{op->id(), rec.spec, *mac, std::nullopt, PinnedOwner(rec, policy)};
    if (guid.ok()) {
      if (auto id = Guid::Parse(*guid); id.ok()) prepare.vmgenid = *id;
    }
    st = SendPeerMessage(*link, prepare);
  }
  if (st.ok()) {
    st = ExpectPeerMessage<PreparedReply>(*link, kPrepareTimeout, "the destination's prepared")
             .status();
  }
  if (st.ok() && cancel->load()) {
    // Cancelled while the destination prepared: it drops its QEMU when the link says abort.
    st = Status::Cancelled("the migration was cancelled");
    SendPeerMessage(*link, AbortBecause(st.message()));
  }
  if (!st.ok()) {
    link->Close();
    release();
    return finish(st);
  }

  // Perform: QEMU precopies into our socket; we carry it to the destination.
  op->SetPhase("perform", 10);
  const int downtime = request.downtime_ms > 0 ? request.downtime_ms : config_.default_downtime_ms;
  auto fail_perform = [&](const Status& why) {
    SendPeerMessage(*link, AbortBecause(why.message()));
    link->Close();
    RollBack(rt, name);
    Unjournal(op->id());
    release();
    return finish(why);
  };
  auto caps = rt.Qmp(
      "migrate-set-capabilities",
      {{"capabilities", json::array({{{"capability", "auto-converge"}, {"state", true}},
                                     {{"capability", "x-ignore-shared"}, {"state", false}}})}});
  if (!caps.ok()) return fail_perform(caps.status());
  auto params = rt.Qmp("migrate-set-parameters",
                       {{"downtime-limit", downtime}, {"max-bandwidth", kUnlimitedBandwidth}});
  if (!params.ok()) return fail_perform(params.status());
  auto pair = NewStreamPair(kStreamBufferBytes);
  if (!pair.ok()) return fail_perform(pair.status());
  Status passed = rt.QmpPassFd(kStreamFdName, pair->qemu.get());
  pair->qemu = StreamFd();  // QEMU holds its own copy: EOF on ours means QEMU closed it
  if (!passed.ok()) return fail_perform(passed);
  const auto started = Clock::now();
  // Journaled before the guest can stop: a ferryd restarted from here on rolls it back.
  Status journaled = Journal(op->id(), name, request.to, JournalPhase::kPerform);
  if (!journaled.ok()) return fail_perform(journaled);
  Status migrate = qemu::Migrate(rt, std::string("fd:") + kStreamFdName);
  if (!migrate.ok()) return fail_perform(migrate);
  const StreamFd& stream = pair->ferryd;
  FaultPoint("migrate.source.sending");

  // Progress comes from QEMU's own counters, polled beside the pump.
  std::atomic<bool> pumping{true};
  auto progress = StartGuardedThread("migration " + op->id() + " progress", [&] {
    while (pumping.load()) {
      auto q = qemu::QueryMigrate(rt);
      if (q.ok() && q->has_ram) {
        const uint64_t total = q->ram_total;
        const uint64_t sent = q->ram_transferred;
        const uint64_t remaining = q->ram_remaining;
        const double mbps = q->ram_mbps;
        const uint64_t dirty = q->dirty_pages_rate;
        int pct =
            total ? static_cast<int>(10 + 80 * (total - std::min(total, remaining)) / total) : 10;
        op->SetPhase("perform: " + Mib(sent) + " sent, " + Mib(remaining) + " left, " +
                         std::to_string(static_cast<int>(mbps)) + " Mbit/s, dirty " +
                         std::to_string(dirty) + " pages/s, " + q->status,
                     std::min(pct, 90));
      }
      for (int i = 0; i < 5 && pumping.load(); ++i) std::this_thread::sleep_for(milliseconds(50));
    }
  });
  if (!progress.ok()) return fail_perform(progress.status());
  Status pumped = PumpToLink(stream, *link, *cancel, nullptr);
  pumping.store(false);
  progress->join();
  if (!pumped.ok()) return fail_perform(pumped);
  json result;
  for (int i = 0; i < 500; ++i) {  // QEMU closes the stream just before it says so
    auto q = qemu::QueryMigrate(rt);
    if (!q.ok()) return fail_perform(q.status());
    if (q->state == qemu::MigrationState::kCompleted) {
      result = q->raw;
      break;
    }
    if (q->state == qemu::MigrationState::kFailed || q->state == qemu::MigrationState::kCancelled) {
      return fail_perform(
          Status::Unavailable("QEMU's precopy " + q->status + ": " +
                              (q->error_desc.empty() ? "no reason" : q->error_desc)));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (result.is_null()) return fail_perform(Status::DeadlineExceeded("QEMU did not complete"));
  if (cancel->load()) return fail_perform(Status::Cancelled("the migration was cancelled"));
  st = link->SendStreamEnd();
  if (st.ok()) {
    st = ExpectPeerMessage<ReceivedReply>(*link, kReplyTimeout, "the destination's received")
             .status();
  }
  if (!st.ok()) return fail_perform(st);

  // Finish: from here on only the destination may run the guest.
  op->SetPhase("finish on " + request.to, 95);
  // Journaled before "finish" is sent: a source that cannot record it must not let the
  // destination resume (a restart could not tell whether the guest runs there).
  Status journaled_finish = Journal(op->id(), name, request.to, JournalPhase::kFinish);
  if (!journaled_finish.ok()) return fail_perform(journaled_finish);
  st = SendPeerMessage(*link, FinishRequest{});
  FaultPoint("migrate.source.after_finish");
  if (st.ok()) {
    st = ExpectPeerMessage<FinishedReply>(*link, kReplyTimeout, "the destination's finished")
             .status();
  }
  const PeerLink::Counters wire = link->counters();
  link->Close();
  // The lease stays held until the migration is settled: until then the paused copy here must
  // not be resumed, snapshotted or migrated again. Settling rolls it back (and releases it) or
  // deletes it under this operation's id.
  if (!st.ok()) {
    // The destination may or may not have resumed: resuming here on a guess could make two
    // copies. Ask it on a new link; until it answers, the copy here stays paused.
    op->SetPhase("finish: asking " + request.to + " whether the guest runs there", 96);
    auto settled = Settle(op->id(), name, request.to, Clock::now() + kSettleTimeout);
    if (settled.ok() && *settled == SettledState::kAbsent) {
      return finish(Status::Unavailable("host " + request.to + " did not resume the guest (" +
                                        st.message() + "); it runs here again"));
    }
    if (!settled.ok()) {
      SettleInBackground(op->id(), name, request.to, nullptr);
      return finish(Status::Unavailable("the destination did not confirm that the guest runs (" +
                                        st.message() + "), nor " + settled.status().message() +
                                        "; the copy here stays paused while ferryd keeps asking " +
                                        request.to + " (ferry vm show " + name + ")"));
    }
    spdlog::info("{}: {} confirmed on a second link that the guest runs there", what, request.to);
  } else {
    // Confirm: the destination runs the guest; the source copy goes.
    op->SetPhase("confirm", 98);
    Status deleted = vms_.Delete(name, /*force=*/true, /*holder=*/op->id());
    if (!deleted.ok()) {
      spdlog::error("{}: the source copy could not be removed: {}", what, deleted.message());
      release();
    }
    Unjournal(op->id());
  }
  json ram = result.value("ram", json::object());
  json out = {{"vm", name},
              {"to", request.to},
              {"total_ms", MsSince(started)},
              {"qemu_total_ms", result.value("total-time", 0)},
              {"downtime_ms", result.value("downtime", 0)},
              {"ram_transferred_bytes", ram.value("transferred", uint64_t{0})},
              {"wire_bytes_sent", wire.wire_bytes_sent},
              {"wire_bytes_received", wire.wire_bytes_received},
              {"downtime_limit_ms", downtime}};
  spdlog::info("{}: done in {} ms, downtime {} ms, {} on the wire", what,
               out["total_ms"].get<int64_t>(), out["downtime_ms"].get<int64_t>(),
               Mib(wire.wire_bytes_sent));
  finish(Status::Ok());
  op->Succeed(out);
}

}  // namespace ferry::migrate
