// `ferry hold send`, the receiving end (migrate::IncomingHolds, on the thread of the link the
// sender opened; migrate/migration_protocol.h "Sending a hold"):
//
//   Prepare  the manifest read, its signature checked against the sender's certificate and its
//            table opened with the data key (store BeginImport); the VM it keeps checked as an
//            incoming migration is (destination_checks.h); no VM or hold of that name here;
//            the row says "receiving"; the owner's dedup secret adopted; the ids of the chunks
//            this store lacks sent back
//   Perform  each chunk checked against the table and stored; synced; the manifest committed
//            under this host's key and signature (state "received"); "received"
//   Finish   on "finish": the transfer recorded (kTransferKind) -- from here the copy here is
//            the hold, after a restart too -- then the row and manifest say "durable"; "finished"
//
// Anything that fails before the record drops the copy here (key shredded, row gone): the
// sender still holds the hold.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>
#include <unordered_set>

#include "core/fault_point.h"
#include "hold/held_vm.h"
#include "hold/hold_service.h"
#include "hold/object_transfer.h"
#include "migrate/destination_checks.h"
#include "migrate/migration_messages.h"
#include "migrate/peer_data_reader.h"
#include "store/hold_import.h"
#include "store/hold_manifest.h"

namespace ferry::hold {
namespace {

using migrate::SettledState;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kStreamIdleTimeout{60000};
constexpr milliseconds kFinishTimeout{60000};
// A hold-query waits this long for this host's own handling of the transfer to end.
constexpr auto kQueryWait = std::chrono::seconds(75);
}  // namespace

void HoldService::ReceiveHold(migrate::PeerLink& link, const migrate::HoldPrepareRequest& request) {
  if (request.snapshot) return ReceiveSnapshot(link, request);
  const std::string from = link.peer().host_id;
  const std::string what = "hold of vm " + request.vm + " from " + from;
  if (Status claimed = Claim(request.vm, what); !claimed.ok()) {
    migrate::SendPeerMessage(link, migrate::FailedBecause("host " + peers_->self().host_id + ": " +
                                                          claimed.message()));
    return;
  }
  HoldRow row;
  bool journaled = false;
  Result<json> received = Receive(link, request, row, journaled);
  if (!received.ok()) {
    spdlog::warn("{}: not kept: {}", what, received.status().message());
    if (link.open()) {
      migrate::SendPeerMessage(link, migrate::FailedBecause("host " + peers_->self().host_id +
                                                            ": " + received.status().message()));
    }
    if (journaled && !TransferKept(row.transfer)) {
      Status dropped = Shred(row);
      if (!dropped.ok()) spdlog::error("{}: dropping the copy here: {}", what, dropped.message());
    }
  } else {
    spdlog::info("{}: held here ({})", what, received->dump());
  }
  Release(request.vm);
}

Result<json> HoldService::Receive(migrate::PeerLink& link,
                                  const migrate::HoldPrepareRequest& request, HoldRow& row,
                                  bool& journaled) {
  const auto started = std::chrono::steady_clock::now();
  const std::string& name = request.vm;
  const std::string from = link.peer().host_id;
  if (auto existing = Row(name); existing.ok()) {
    if (existing->step != HoldStep::kExpired) {
      return Status::AlreadyExists("vm " + name + " is held on host " +
                                   peers_->self().host_id + " already");
    }
    FERRY_RETURN_IF_ERROR(rows_.Delete(name));
  }
  if (vms_.Exists(name)) {
    return Status::AlreadyExists("a vm named " + name + " exists on host " +
                                 peers_->self().host_id);
  }
  // Prepare.
  migrate::PeerDataReader reader(link, kStreamIdleTimeout);
  store::HoldExport exported;
  FERRY_ASSIGN_OR_RETURN(exported.manifest, reader.Read(request.manifest_bytes));
  exported.data_key = request.data_key;
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<store::HoldImport> import,
                         store_.BeginImport(exported, link.peer_certificate()));
  const store::HoldManifest& manifest = import->manifest();
  const store::HoldHeader& header = manifest.header;
  const std::string what = "the hold of vm " + name;
  if (header.kind != store::kKindHold) {
    return Status::InvalidArgument(what + ": the manifest keeps a " + header.kind + ", not a hold");
  }
  if (header.vm_name != name || header.owner_fingerprint != request.owner) {
    return Status::InvalidArgument(what + ": the manifest names vm " + header.vm_name.substr(0, 64) +
                                   " or another owner than the request");
  }
  if (header.expires_at != 0 && header.expires_at <= std::time(nullptr)) {
    return Status::PermissionDenied(what + " has expired (the owner's policy limits holds)");
  }
  FERRY_ASSIGN_OR_RETURN(HeldVm held, HeldVm::Parse(header.spec_json, what));
  if (held.spec.name != name) {
    return Status::InvalidArgument(what + ": the manifest keeps vm " + held.spec.name);
  }
  FERRY_RETURN_IF_ERROR(
      migrate::CheckIncomingHold(held.spec, held.owner, peers_->self(), peers_->config()));
  row.vm = name;
  row.hold_id = header.hold_id;
  row.step = HoldStep::kReceiving;
  row.held_at = header.created_at;
  row.expires_at = header.expires_at;
  row.transfer = request.migration;
  row.peer = from;
  FERRY_RETURN_IF_ERROR(PutRow(row).WithContext("journaling the receive"));
  journaled = true;
  FaultPoint("hold.receive.after_journal");
  // Perform.
  FERRY_ASSIGN_OR_RETURN(ReceivedChunks received,
                         ReceiveObjectChunks(link, reader, store_, *import, request, what));
  FaultPoint("hold.receive.before_commit");
  FERRY_RETURN_IF_ERROR(import->Commit("received"));
  import.reset();  // Collect may run again
  FaultPoint("hold.receive.after_commit");
  FERRY_RETURN_IF_ERROR(migrate::SendPeerMessage(link, migrate::ReceivedReply{}));
  // Finish.
  FERRY_RETURN_IF_ERROR(migrate::ExpectPeerMessage<migrate::FinishRequest>(link, kFinishTimeout,
                                                                          "the sender's finish")
                            .status()
                            .WithContext("the sender did not finish"));
  FERRY_RETURN_IF_ERROR(transfers_.Put(row.transfer, TransferRecord{name, from, std::time(nullptr)})
                            .WithContext("recording the transfer"));
  FaultPoint("hold.receive.after_record");
  HoldRow durable = row;
  durable.step = HoldStep::kDurable;
  Status marked = PutRow(durable);
  if (marked.ok()) marked = store_.UpdateState(row.hold_id, "durable");
  if (!marked.ok()) {
    // The record says the hold is here: the next start finishes marking it.
    spdlog::error("{}: kept, but not yet marked durable: {}", what, marked.message());
  }
  FaultPoint("hold.receive.before_finished");
  Status told = migrate::SendPeerMessage(link, migrate::FinishedReply{});
  if (!told.ok()) {
    spdlog::warn("{}: held here, but the sender was not told ({}); it will ask", what,
                 told.message());
  }
  const auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                           started)
                      .count();
  return json{
      {"chunks_received", received.chunks}, {"bytes_received", received.bytes}, {"total_ms", ms}};
}

bool HoldService::TransferKept(const std::string& transfer) {
  auto record = transfers_.Find(transfer);
  return record.ok() && record->has_value();
}

SettledState HoldService::HoldSettled(const migrate::HoldQueryRequest& query) {
  // This host's own handling of the transfer ends first: its outcome is the answer.
  {
    std::unique_lock<std::mutex> lock(mu_);
    released_cv_.wait_for(lock, kQueryWait, [&] { return !busy_.count(query.vm) || stopping_; });
    if (busy_.count(query.vm)) return SettledState::kUnsettled;
  }
  // Once recorded here, the copy here is the hold, whatever became of it since (restored,
  // deleted, sent on).
  return TransferKept(query.migration) ? SettledState::kHeld : SettledState::kAbsent;
}

}  // namespace ferry::hold
