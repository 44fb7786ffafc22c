// The destination side of a live migration: Prepare and Finish (migration_protocol.h). Runs on
// the thread of the link a peer opened; the VM arrives through the VM service's restore hook, so
// it is registered as running only once the guest resumed here.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/fault_point.h"
#include "core/thread_priority.h"
#include "migrate/destination_checks.h"
#include "migrate/disk_export.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_service.h"
#include "migrate/qemu_stream.h"
#include "qemu/qmp_disk_mirror.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kFirstMessageTimeout{30000};
constexpr milliseconds kStreamIdleTimeout{60000};
constexpr milliseconds kFinishTimeout{60000};
// A disk's copy runs at the speed of the link and the disk: the source says "disk-ready" (or
// gives up) when it is in step.
constexpr milliseconds kDiskCopyTimeout{6 * 3600 * 1000};
constexpr int64_t kOperationTimeoutMs = 3'600'000;

// An incoming VM's data disk: exported over NBD for the source's copy (disk_export.h).
struct IncomingDisk {
  std::shared_ptr<DiskExports> exports;
  std::string migration;
  std::string source_host;
  std::string socket_path;
  std::string key_dir;  // the NBD server's TLS key (nbd_tls.h)
  std::shared_ptr<NbdTurn> turn = std::make_shared<NbdTurn>();
};

// Drops a disk's registration for its link however the receive ends.
struct DiskOffer {
  const IncomingDisk* disk = nullptr;
  ~DiskOffer() {
    if (disk) disk->exports->Remove(disk->migration);
  }
};

// Exports the disk, registers it for its link and returns the token "prepared" carries, with
// the export's TLS key.
Result<IncomingDiskExport> OfferDisk(vm::VmRuntime& rt, const IncomingDisk& disk) {
  auto exported = ExportIncomingDisk(rt, disk.socket_path, disk.key_dir);
  if (!exported.ok()) return exported.status().WithContext("exporting the disk for its copy");
  disk.exports->Add(disk.migration,
                    {disk.source_host, exported->token, disk.socket_path, disk.turn});
  FaultPoint("migrate.destination.disk_exported");
  return exported;
}

// Receives the guest into a QEMU waiting with -incoming defer, then resumes it when the source
// says so. With a disk, the source first copies it into this QEMU's NBD export and says
// "disk-ready"; the export stops before the guest resumes. Returns the timings recorded in the VM.
Result<vm::RestoredGuest> ReceiveGuest(PeerLink& link, vm::VmRuntime& rt,
                                       const std::optional<IncomingDisk>& disk) {
  FERRY_ASSIGN_OR_RETURN(StreamPair pair, NewStreamPair(disk ? kDestinationStreamBufferWithDiskBytes
                                                             : kStreamBufferBytes));
  FERRY_RETURN_IF_ERROR(rt.QmpPassFd(kStreamFdName, pair.qemu.get())
                            .WithContext("handing QEMU the incoming migration stream"));
  pair.qemu = StreamFd();
  Status listening = qemu::MigrateIncoming(rt, std::string("fd:") + kStreamFdName);
  if (!listening.ok()) return listening.WithContext("starting the incoming migration");
  const StreamFd& fd = pair.ferryd;
  PreparedReply prepared;
  DiskOffer offer;
  NbdTlsKeyDir disk_keys;
  if (disk) {
    FERRY_ASSIGN_OR_RETURN(IncomingDiskExport exported, OfferDisk(rt, *disk));
    prepared.disk_token = std::move(exported.token);
    disk_keys = exported.keys;
    offer.disk = &*disk;
  }
  FERRY_RETURN_IF_ERROR(SendPeerMessage(link, prepared));
  const auto started = std::chrono::steady_clock::now();
  if (disk) {
    FERRY_RETURN_IF_ERROR(
        ExpectPeerMessage<DiskReadyRequest>(link, kDiskCopyTimeout, "the source's disk-ready")
            .status()
            .WithContext("the disk's copy did not complete"));
  }
  {
    const ThreadPriorityBoost boost;  // the stream's hop into QEMU (thread_priority.h)
    FERRY_RETURN_IF_ERROR(
        PumpFromLink(link, fd, kStreamIdleTimeout, disk ? disk->turn.get() : nullptr));
  }
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
  // The source ended its disk copy before it sent the last pass: nothing writes the export now,
  // and the guest's device must be the disk's only writer before it runs.
  if (disk) {
    FERRY_RETURN_IF_ERROR(
        EndIncomingDiskExport(rt, disk_keys).WithContext("ending the disk's export"));
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

// Says "failed" with `why` and ends the link.
void Refuse(PeerLink& link, const std::string& here, const std::string& vm, const Status& why) {
  spdlog::warn("incoming migration of vm {} from host {} refused: {}", vm, link.peer().host_id,
               why.message());
  SendPeerMessage(link, FailedBecause("host " + here + ": " + why.message()));
  link.Close();
}

}  // namespace

void MigrationService::ServeIncoming(std::shared_ptr<PeerLink> link) {
  auto message = ReceivePeerMessage(*link, kFirstMessageTimeout);
  if (!message.ok()) {
    if (!link->open()) {
      spdlog::warn("peer {}: no migration request: {}", link->peer().host_id,
                   message.status().message());
      return;
    }
    return Refuse(*link, self().host_id, "?", message.status());
  }
  if (ServeBesideMigration(link, *message)) return;
  auto* prepare = std::get_if<PrepareRequest>(&*message);
  if (prepare == nullptr) {
    return Refuse(*link, self().host_id, "?",
                  Status::Corruption(std::string("the first message of a migration must be "
                                                 "\"prepare\", not \"") +
                                     MessageType(*message) + "\""));
  }
  ReceiveMigration(link, *prepare);
}

bool MigrationService::ServeBesideMigration(const std::shared_ptr<PeerLink>& link,
                                            const PeerMessage& message) {
  const std::string source = link->peer().host_id;
  if (auto* query = std::get_if<QueryRequest>(&message)) {
    AnswerQuery(*link, *query);
  } else if (auto* hold_query = std::get_if<HoldQueryRequest>(&message)) {
    IncomingHolds* holds = incoming_holds_.load();
    const SettledState state = holds ? holds->HoldSettled(*hold_query) : SettledState::kUnsettled;
    spdlog::info("peer {} asked about hold transfer {} of vm {}: {}", source, hold_query->migration,
                 hold_query->vm, SettledStateName(state));
    SendPeerMessage(*link, StateReply{state});
  } else if (auto* disk_link = std::get_if<DiskLinkRequest>(&message)) {
    auto claimed = disk_exports_->Claim(*disk_link, source);
    if (!claimed.ok()) {
      Refuse(*link, self().host_id, "?", claimed.status());
      return true;
    }
    Status relayed = ServeDiskLink(link, *claimed, "disk of migration " + disk_link->migration);
    if (!relayed.ok()) spdlog::info("disk link from {}: {}", source, relayed.message());
  } else if (auto* hold = std::get_if<HoldPrepareRequest>(&message)) {
    IncomingHolds* holds = incoming_holds_.load();
    if (holds == nullptr) {
      Refuse(*link, self().host_id, hold->vm,
             Status::FailedPrecondition("this host keeps no holds (its ferryd has no store)"));
      return true;
    }
    holds->ReceiveHold(*link, *hold);
  } else {
    return false;
  }
  link->Close();
  return true;
}

void MigrationService::ReceiveMigration(const std::shared_ptr<PeerLink>& link,
                                        const PrepareRequest& prepare) {
  const std::string source = link->peer().host_id;
  const std::string& name = prepare.spec.name;
  auto refuse = [&](const Status& why) { Refuse(*link, self().host_id, name, why); };
  auto spec = CheckIncoming(prepare, self(), config_);
  if (!spec.ok()) return refuse(spec.status());
  if (Status loads = CheckIncomingMachine(prepare, vms_.qemu_version(), self()); !loads.ok()) {
    return refuse(loads);
  }
  std::optional<IncomingDisk> disk;
  if (prepare.disk_bytes) {
    const std::string& state_dir = vms_.config().state_dir;
    if (Status room = CheckRoomForDisk(name, *prepare.disk_bytes, state_dir, self()); !room.ok()) {
      return refuse(room);
    }
    const std::string vm_dir = vm::VmPaths::For(state_dir, name).dir;
    disk = IncomingDisk{disk_exports_, prepare.migration, source, vm_dir + "/nbd.sock",
                        vm_dir + "/nbd-tls"};
  }
  vm::IncomingMigrationLaunch plan;
  plan.mac = prepare.mac.ToString();
  if (prepare.vmgenid) plan.vmgenid = prepare.vmgenid->ToString();
  plan.origin = vm::MigrationOrigin{source, prepare.migration};
  // The restore shares the link: it may outlive this call (WaitDone below gives up first).
  plan.restore = [link, disk](vm::VmRuntime& rt, Operation& op) -> Result<vm::RestoredGuest> {
    op.SetPhase("receiving from " + link->peer().host_id, 50);
    return ReceiveGuest(*link, rt, disk);
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
