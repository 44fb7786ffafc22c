// `ferry snapshot send`, the receiving end (a "hold-prepare" naming a snapshot, handed here by
// ReceiveHold on the link's thread; snapshot_send.cc has the sender's steps):
//
//   Prepare  the manifest read, the sender's signature checked and its table opened with the
//            data key (store BeginImport); it must keep a snapshot, the one the request names,
//            without a data disk; the owner's policy checked as for an incoming migration
//            (destination_checks.h), and that it allows clones; no snapshot of that name here;
//            the owner's dedup secret adopted; the ids of the chunks this store lacks sent back
//   Perform  each chunk checked and stored; synced; the object committed under this host's key
//            and signature; its RAM image and device state written out as a snapshot of this
//            host, verified against the snapshot's own manifest, then registered; "received"
//
// Any failure leaves no snapshot and no store object here (the chunks stay for Collect).
#include <spdlog/spdlog.h>

#include <chrono>

#include "hold/hold_service.h"
#include "hold/object_transfer.h"
#include "migrate/destination_checks.h"
#include "snapshot/snapshot_transfer.h"
#include "store/hold_import.h"
#include "store/hold_manifest.h"
#include "vm/vm_policy.h"

namespace ferry::hold {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kStreamIdleTimeout{60000};

// The snapshot the manifest keeps, checked against what the request says it is.
Result<snapshot::SnapshotManifest> SnapshotOf(const store::HoldHeader& header,
                                              const migrate::HoldPrepareRequest& request,
                                              const std::string& object_id,
                                              const std::string& what) {
  // REQUIRES: object_id is HoldService::SnapshotObjectId of the snapshot the request names.
  if (header.kind != store::kKindSnapshot) {
    return Status::InvalidArgument(what + ": the manifest keeps a " + header.kind +
                                   ", not a snapshot");
  }
  FERRY_ASSIGN_OR_RETURN(snapshot::SnapshotManifest m,
                         snapshot::ParseManifest(header.spec_json, what + ": its manifest"));
  if (m.name != *request.snapshot || m.vm_name != request.vm || header.vm_name != request.vm ||
      header.owner_fingerprint != request.owner || header.hold_id != object_id) {
    return Status::InvalidArgument(what + ": the manifest keeps snapshot " + m.name.substr(0, 64) +
                                   " of vm " + m.vm_name.substr(0, 64) +
                                   ", or another owner or id than the request");
  }
  return m;
}

// What this host accepts: no data disk; the owner's rules as this host reads them (migration
// rule, pinned and accepted owners, bridges), as for an incoming migration; and clones, since a
// snapshot here is only good for them.
Status CheckArrivedSnapshot(const snapshot::SnapshotManifest& m, const store::HoldHeader& header,
                            const crypto::HostIdentity& self,
                            const migrate::MigrationConfig& config, const std::string& what) {
  if (m.disk) {
    return Status::FailedPrecondition(what +
                                      " has a data disk; snapshots with disks are not "
                                      "received yet");
  }
  auto spec = vm::VmSpec::FromJson(m.vm_spec.value("spec", json::object()));
  if (!spec.ok()) return spec.status().WithContext(what + ": its VM spec");
  if (spec->policy != header.policy_text) {
    return Status::InvalidArgument(what + ": the policy in its manifest is not the object's");
  }
  FERRY_RETURN_IF_ERROR(
      migrate::CheckIncomingHold(*spec, header.owner_fingerprint, self, config).WithContext(what));
  return vm::CheckSpecCloneAllowed(*spec, what);
}

}  // namespace

void HoldService::ReceiveSnapshot(migrate::PeerLink& link,
                                  const migrate::HoldPrepareRequest& request) {
  const std::string from = link.peer().host_id;
  const std::string what = "snapshot " + *request.snapshot + " from " + from;
  const std::string claim = ObjectClaim("snapshot " + *request.snapshot);
  if (Status claimed = Claim(claim, what); !claimed.ok()) {
    migrate::SendPeerMessage(
        link, migrate::FailedBecause("host " + peers_->self().host_id + ": " + claimed.message()));
    return;
  }
  bool committed = false;
  std::string object_id;
  Result<json> received = ReceiveSnapshotObject(link, request, object_id, committed);
  if (!received.ok()) {
    spdlog::warn("{}: not kept: {}", what, received.status().message());
    if (link.open()) {
      migrate::SendPeerMessage(link, migrate::FailedBecause("host " + peers_->self().host_id +
                                                            ": " + received.status().message()));
    }
    if (committed) {
      Status dropped = store_.ShredHold(object_id);
      if (!dropped.ok())
        spdlog::error("{}: dropping the store's copy: {}", what, dropped.message());
    }
  } else {
    spdlog::info("{}: kept here ({})", what, received->dump());
  }
  if (!object_id.empty()) Release(ObjectClaim(object_id));
  Release(claim);
}

Result<json> HoldService::ReceiveSnapshotObject(migrate::PeerLink& link,
                                                const migrate::HoldPrepareRequest& request,
                                                std::string& object_id, bool& committed) {
  const auto started = std::chrono::steady_clock::now();
  const std::string& name = *request.snapshot;
  const std::string from = link.peer().host_id;
  const std::string what = "snapshot " + name + " from " + from;
  // Prepare. The manifest is read first, also when the answer is no: the sender is still
  // writing it, and would see a broken link instead of the reason.
  migrate::PeerDataReader reader(link, kStreamIdleTimeout);
  store::HoldExport exported;
  FERRY_ASSIGN_OR_RETURN(exported.manifest, reader.Read(request.manifest_bytes));
  if (snapshot::FindStoredSnapshot(snapshot_rows_, name).status().code() !=
      Status::Code::kNotFound) {
    return Status::AlreadyExists("snapshot " + name + " exists on host " + peers_->self().host_id +
                                 " already; delete it there first, "
                                 "or send it under another name");
  }
  exported.data_key = request.data_key;
  // A store object of this snapshot that its (deleted) snapshot left for the reaper goes first:
  // its chunks stay, so none of them travels again.
  {
    FERRY_ASSIGN_OR_RETURN(store::ManifestFile peek,
                           store::DecodeHoldManifest(exported.manifest, link.peer_certificate(),
                                                     "received manifest of " + what));
    if (peek.manifest.header.kind != store::kKindSnapshot) {
      return Status::InvalidArgument(what + ": the manifest keeps a " + peek.manifest.header.kind +
                                     ", not a snapshot");
    }
    FERRY_RETURN_IF_ERROR(Claim(ObjectClaim(peek.manifest.header.hold_id), what));
    object_id = peek.manifest.header.hold_id;
  }
  if (auto old = store_.LoadHold(object_id); old.ok() && old->header.kind == store::kKindSnapshot) {
    FERRY_RETURN_IF_ERROR(store_.ShredHold(object_id));
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<store::HoldImport> import,
                         store_.BeginImport(exported, link.peer_certificate()));
  const store::HoldHeader& header = import->manifest().header;
  if (header.hold_id != object_id) {
    return Status::InvalidArgument(what + ": the manifest names another object");
  }
  FERRY_ASSIGN_OR_RETURN(snapshot::SnapshotManifest m,
                         SnapshotOf(header, request, object_id, what));
  if (object_id != SnapshotObjectId(m.id)) {
    return Status::InvalidArgument(what + ": the store object is not named after snapshot id " +
                                   m.id);
  }
  FERRY_RETURN_IF_ERROR(CheckArrivedSnapshot(m, header, peers_->self(), peers_->config(), what));
  // Perform.
  FERRY_ASSIGN_OR_RETURN(ReceivedChunks received,
                         ReceiveObjectChunks(link, reader, store_, *import, request, what));
  FERRY_RETURN_IF_ERROR(import->Commit("durable"));
  committed = true;
  import.reset();  // Collect may run again
  auto blob = [this, &object_id](const char* blob_name) {
    return [this, &object_id, blob_name](int fd) {
      return store_.ReconstituteBlob(object_id, blob_name, fd);
    };
  };
  FERRY_RETURN_IF_ERROR(snapshot::AdoptReceivedSnapshot(vms_, snapshot_rows_, m, from,
                                                        blob(kRamBlob), blob(kDeviceStateBlob)));
  FERRY_RETURN_IF_ERROR(migrate::SendPeerMessage(link, migrate::ReceivedReply{}));
  const auto ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  return json{
      {"chunks_received", received.chunks}, {"bytes_received", received.bytes}, {"total_ms", ms}};
}

}  // namespace ferry::hold
