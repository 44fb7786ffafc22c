// `ferry snapshot send NAME --to HOST`, the sending end: a snapshot (or a template's snapshot)
// is copied to a peer the way a hold is sent (hold_send.h), over the same "hold-prepare"
// exchange (object_transfer.h), and this host keeps its snapshot:
//
//   Check    the snapshot is here, verified, has no data disk, and its owner's policy lets it be
//            cloned (a snapshot elsewhere is only good for clones) -- refused otherwise
//   Allowed  a link to HOST, whose certificate the policy's migration rule must allow -- refused
//            here, before the snapshot is sealed and before anything of it has left
//   Seal     the RAM image and device state sealed into the store as object "snap-<id>" (kind
//            "snapshot", its snapshot manifest as the spec), unless a send sealed it before;
//            it stays while the snapshot does (ShredOrphanSnapshots)
//   Send     a new link (checked again); the manifest and data key inside TLS; HOST checks the
//            policy itself and answers with the chunks it lacks; those chunks, sealed; HOST
//            commits, makes the snapshot its own and answers "received"
//
// A copy has nothing to settle: whatever fails, this host keeps its snapshot as it was.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <set>

#include "core/files.h"
#include "core/ids.h"
#include "core/unique_fd.h"
#include "crypto/owner_policy.h"
#include "hold/hold_service.h"
#include "hold/object_transfer.h"
#include "snapshot/snapshot_transfer.h"
#include "snapshot/verified_files.h"
#include "store/hold_manifest.h"

namespace ferry::hold {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kConnectTimeout{10000};
constexpr milliseconds kPrepareTimeout{120000};
// The receiver syncs, commits and writes the snapshot's files before it answers "received".
constexpr milliseconds kCommitTimeout{300000};

int64_t MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t).count();
}

Result<UniqueFd> OpenReadOnly(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::Internal(what + ": cannot open " + path);
  return fd;
}

Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::Internal("cannot stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

// The owner's policy of the snapshot's VM (nullopt: none), and the destination checked against
// its migration rule, as a live migration checks it.
Status CheckDestination(const std::optional<crypto::OwnerPolicy>& policy,
                        const migrate::PeerLink& link) {
  if (!policy) return Status::Ok();
  return crypto::CheckMigrationAllowed(*policy, link.peer());
}

// A snapshot checked for sending, with its owner's policy (nullopt: none).
struct SendableSnapshot {
  snapshot::StoredSnapshot stored;
  std::optional<crypto::OwnerPolicy> policy;
  std::string owner;  // the policy's owner fingerprint, the store's dedup scope ("" for none)
};

// The snapshot, verified, without a data disk, and clonable by its owner's rules.
Result<SendableSnapshot> CheckSendable(vm::VmService& vms, snapshot::SnapshotTable& rows,
                                       const std::string& name) {
  SendableSnapshot out;
  FERRY_ASSIGN_OR_RETURN(out.stored, snapshot::FindStoredSnapshot(rows, name));
  const snapshot::StoredSnapshot& s = out.stored;
  if (s.manifest.disk) {
    return Status::FailedPrecondition("snapshot " + name +
                                      " has a data disk; snapshots with "
                                      "disks are not sent yet (hold a clone of it and send the "
                                      "hold instead)");
  }
  Status clonable = snapshot::CheckSnapshotClonable(vms, s, "snapshot " + name);
  if (!clonable.ok()) {
    return Status::FromCode(clonable.code(), clonable.message() +
                                                 "; a snapshot is sent to be cloned, so it "
                                                 "cannot be sent (the owner may sign a policy "
                                                 "that allows clones)");
  }
  snapshot::VerifiedFiles verified;
  FERRY_RETURN_IF_ERROR(snapshot::VerifySnapshot(s.dir, s.manifest, verified)
                            .WithContext("snapshot " + name + " is not sent"));
  if (!s.spec.policy.empty()) {
    FERRY_ASSIGN_OR_RETURN(
        out.policy, crypto::ParsePolicy(s.spec.policy, "the policy of vm " + s.manifest.vm_name));
    out.owner = out.policy->owner_fingerprint;
  }
  return out;
}

// The snapshot's RAM image and device state sealed as store object `object_id`, its manifest's
// text as the object's spec.
Status SealSnapshotObject(store::Store& store, const SendableSnapshot& sendable,
                          const std::string& object_id, const std::string& ram_blob,
                          const std::string& device_state_blob) {
  const snapshot::StoredSnapshot& s = sendable.stored;
  const snapshot::SnapshotManifest& m = s.manifest;
  const std::string what = "snapshot " + s.name;
  FERRY_ASSIGN_OR_RETURN(std::string manifest_text,
                         ReadFile(s.dir + "/" + snapshot::SnapshotManifest::kFileName));
  FERRY_ASSIGN_OR_RETURN(UniqueFd ram, OpenReadOnly(s.ram, what));
  const std::string state_path = s.dir + "/" + m.device_state.file;
  FERRY_ASSIGN_OR_RETURN(UniqueFd state, OpenReadOnly(state_path, what));
  FERRY_ASSIGN_OR_RETURN(uint64_t ram_size, FileSize(ram.get(), s.ram));
  FERRY_ASSIGN_OR_RETURN(uint64_t state_size, FileSize(state.get(), state_path));
  store::HoldHeader header;
  header.hold_id = object_id;
  header.kind = store::kKindSnapshot;
  header.vm_name = m.vm_name;
  header.owner_fingerprint = sendable.owner;
  header.policy_text = s.spec.policy;
  header.spec_json = manifest_text;
  header.created_at = m.created_at_ms / 1000;
  header.state = "durable";
  return store
      .SealHold(header,
                {{ram_blob, ram.get(), ram_size}, {device_state_blob, state.get(), state_size}})
      .status();
}

}  // namespace

Result<std::shared_ptr<Operation>> HoldService::SendSnapshot(const std::string& name,
                                                             const std::string& to) {
  const std::string what = "send of snapshot " + name + " to " + to;
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot", name));
  if (peers_ == nullptr) {
    return Status::FailedPrecondition(what +
                                      ": this ferryd has no peers; start it with --tls-dir "
                                      "and add the destination with ferry peer add");
  }
  if (to.empty()) return Status::InvalidArgument(what + ": which host? (--to)");
  if (to == peers_->self().host_id) {
    return Status::InvalidArgument(what + ": the snapshot is on host " + to + " already");
  }
  FERRY_RETURN_IF_ERROR(
      snapshot::FindStoredSnapshot(snapshot_rows_, name).status().WithContext(what));
  auto op = vms_.operations().Start("snapshot-send", name);
  vms_.InBackground(
      [this, name, to, what, op] {
        Result<json> sent = RunSnapshotSend(name, to, *op);
        if (sent.ok()) op->Succeed(*sent);
        if (!sent.ok()) {
          spdlog::warn("{}: {}", what, sent.status().message());
          op->Fail(sent.status().WithContext(what));
        }
      },
      op);
  return op;
}

Result<json> HoldService::RunSnapshotSend(const std::string& name, const std::string& to,
                                          Operation& op) {
  const auto started = std::chrono::steady_clock::now();
  const std::string keeps = "; snapshot " + name + " stays on this host as it was";
  op.SetPhase("checking snapshot " + name, 2);
  FERRY_ASSIGN_OR_RETURN(SendableSnapshot sendable, CheckSendable(vms_, snapshot_rows_, name));
  const snapshot::SnapshotManifest& m = sendable.stored.manifest;
  const std::optional<crypto::OwnerPolicy>& policy = sendable.policy;
  // Allowed: refused here, before anything of the snapshot is sealed or leaves.
  op.SetPhase("checking host " + to, 4);
  {
    FERRY_ASSIGN_OR_RETURN(auto link, peers_->ConnectToHost(to, kConnectTimeout));
    Status allowed = CheckDestination(policy, *link);
    link->Close();
    if (!allowed.ok()) return allowed.WithContext("snapshot " + name + " is not sent");
  }
  // Seal.
  const std::string object_id = SnapshotObjectId(m.id);
  FERRY_RETURN_IF_ERROR(Claim(ObjectClaim(object_id), "snapshot " + name));
  struct Unclaim {
    HoldService* self;
    std::string key;
    ~Unclaim() { self->Release(key); }
  } unclaim{this, ObjectClaim(object_id)};
  const bool sealed_now = !store_.LoadHold(object_id).ok();
  if (sealed_now) {
    op.SetPhase("sealing snapshot " + name + " into the store", 10);
    FERRY_RETURN_IF_ERROR(
        SealSnapshotObject(store_, sendable, object_id, kRamBlob, kDeviceStateBlob)
            .WithContext("snapshot " + name + " is not sent"));
  }
  // Send.
  op.SetPhase("prepare on " + to, 40);
  FERRY_ASSIGN_OR_RETURN(auto link, peers_->ConnectToHost(to, kConnectTimeout));
  FERRY_RETURN_IF_ERROR(CheckDestination(policy, *link).WithContext("snapshot " + name));
  migrate::HoldPrepareRequest request;
  request.migration = op.id();
  request.vm = m.vm_name;
  request.owner = sendable.owner;
  request.snapshot = name;
  auto offer = OfferObject(*link, store_, object_id, std::move(request), to, kPrepareTimeout);
  if (!offer.ok()) {
    return Status::FromCode(offer.status().code(), offer.status().message() + keeps);
  }
  op.SetPhase("perform: " + std::to_string(offer->wanted.size()) + " of " +
                  std::to_string(offer->chunks_total) + " chunks to send",
              50);
  auto sent = SendWantedChunks(*link, store_, offer->wanted, [&](size_t n, uint64_t) {
    op.SetPhase("perform: " + std::to_string(n) + " of " + std::to_string(offer->wanted.size()) +
                    " chunks sent",
                50 + static_cast<int>(40 * n / offer->wanted.size()));
  });
  Status st = sent.status();
  if (st.ok()) {
    op.SetPhase("perform: " + to + " commits its copy", 90);
    st = migrate::ExpectPeerMessage<migrate::ReceivedReply>(*link, kCommitTimeout,
                                                            "the destination's received")
             .status();
  }
  const migrate::PeerLink::Counters wire = link->counters();
  if (!st.ok() && link->open())
    migrate::SendPeerMessage(*link, migrate::AbortBecause(st.message()));
  link->Close();
  if (!st.ok()) return Status::FromCode(st.code(), st.message() + keeps);
  FERRY_ASSIGN_OR_RETURN(store::HoldManifest object, store_.LoadHold(object_id));
  spdlog::info("snapshot {} copied to {}: {} of {} chunks ({} bytes) sent", name, to,
               offer->wanted.size(), offer->chunks_total, *sent);
  return json{{"snapshot", name},
              {"vm", m.vm_name},
              {"to", to},
              {"total_ms", MsSince(started)},
              {"sealed_now", sealed_now},
              {"logical_bytes", object.logical_bytes},
              {"manifest_bytes", offer->manifest_bytes},
              {"chunks", offer->chunks_total},
              {"chunks_sent", offer->wanted.size()},
              {"chunk_bytes_sent", *sent},
              {"wire_bytes_sent", wire.wire_bytes_sent},
              {"wire_bytes_received", wire.wire_bytes_received}};
}

void HoldService::ShredOrphanSnapshots() {
  auto rows = snapshot_rows_.List();
  if (!rows.ok()) return;
  std::set<std::string> kept;
  for (const auto& [name, row] : *rows) kept.insert(SnapshotObjectId(row.id));
  for (const std::string& id : store_.ListHolds()) {
    if (kept.count(id)) continue;
    auto object = store_.LoadHold(id);
    if (!object.ok() || object->header.kind != store::kKindSnapshot) continue;
    if (!Claim(ObjectClaim(id), "reaper").ok()) continue;  // being sealed, sent or received
    // Checked again under the claim: a receive registers its snapshot before it releases it.
    auto again = snapshot_rows_.List();
    bool orphan = again.ok();
    if (again.ok()) {
      for (const auto& [name, row] : *again) {
        if (SnapshotObjectId(row.id) == id) orphan = false;
      }
    }
    if (orphan) {
      Status st = store_.ShredHold(id);
      if (st.ok()) spdlog::info("store object {}: its snapshot is gone; shredded", id);
      if (!st.ok())
        spdlog::warn("store object {}: its snapshot is gone, but: {}", id, st.message());
    }
    Release(ObjectClaim(id));
  }
}

}  // namespace ferry::hold
