// Holds: a VM's whole state sealed into this host's store while it runs nowhere, and brought
// back later as the same machine (docs/holds.md).
//
//   ferry hold VM       pause; device state; RAM and device state sealed into the store
//                       (durable); then the VM's QEMU, RAM file and record go: the hold is it
//   ferry hold restore  the VM registered again from the hold, its RAM file and device state
//                       reconstituted into a QEMU waiting with -incoming; resumed with the same
//                       MAC, generation ID, hostname and tap address; its clock stepped; the
//                       hold consumed
//   ferry hold delete   crypto-shred: the hold's data key and manifest go, chunks no other
//                       hold uses are collected
//   ferry hold send     the hold moves to a peer: only the chunks it lacks travel; the peer
//                       commits it under its own key; the hold here is shredded once the peer
//                       confirmed its copy durable (hold_send.h, hold_receive.cc)
//
// Exactly one copy: each step is journaled in the registry (hold_journal.h) before it is taken,
// and Recover finishes or undoes what a crash interrupted. The owner's policy is checked at
// hold (hold.allowed) and at restore (the hold's expiry, hold.max_seconds after it was taken);
// the reaper shreds expired holds.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "hold/held_vm.h"
#include "hold/hold_journal.h"
#include "migrate/migration_service.h"
#include "registry/table.h"
#include "snapshot/snapshot_rows.h"
#include "store/store.h"
#include "vm/vm_service.h"

namespace ferry::hold {

struct RestoreOptions {
  bool wait_ready = false;
  // Set: the restored VM's port forwards instead of the held ones (e.g. a host port another VM
  // of the receiving host already forwards). Only for user networking.
  std::optional<std::vector<vm::PortForwardSpec>> forwards;
};

class HoldService : public migrate::IncomingHolds {
 public:
  // Finishes what a ferryd that died mid-hold, mid-restore or mid-send left (Recover) and starts
  // the reaper. `peers` (may be null: no sends) carries holds to and from other hosts; the
  // service registers itself there for incoming holds, and unregisters in its destructor.
  // REQUIRES: `vms` has re-adopted its VMs; `peers` outlives this service.
  // Keeps its rows in `registry` (and reads snapshots' there); both outlive it.
  HoldService(vm::VmService& vms, registry::Registry& registry, store::Store& store,
              migrate::MigrationService* peers = nullptr);
  ~HoldService() override;
  // Stops answering peers and settling sends, and ends the reaper; waits for background settles.
  // Idempotent. Call it before `peers` goes (ferryd's shutdown); the destructor calls it too.
  void Stop();

  Result<std::shared_ptr<Operation>> Hold(const std::string& vm);
  Result<std::shared_ptr<Operation>> Restore(const std::string& vm, const RestoreOptions& options);
  // Moves the hold to peer host `to` (hold_send.h).
  Result<std::shared_ptr<Operation>> Send(const std::string& vm, const std::string& to);
  // Copies snapshot `name` to peer host `to` through the store, as a hold is sent; this host
  // keeps its snapshot (snapshot_send.cc).
  Result<std::shared_ptr<Operation>> SendSnapshot(const std::string& name, const std::string& to);

  // migrate::IncomingHolds (hold_receive.cc).
  void ReceiveHold(migrate::PeerLink& link, const migrate::HoldPrepareRequest& request) override;
  migrate::SettledState HoldSettled(const migrate::HoldQueryRequest& query) override;
  nlohmann::json List();
  Result<nlohmann::json> Show(const std::string& vm);
  // Crypto-shred: the hold cannot be restored by anyone afterwards.
  Status Delete(const std::string& vm);

  Result<nlohmann::json> StoreShow();
  Result<nlohmann::json> StoreVerify();
  Result<nlohmann::json> StoreCollect();

  // Shreds every hold past its expiry, logging each, and every snapshot object of the store
  // whose snapshot is gone (ShredOrphanSnapshots). The reaper calls it every kReapInterval.
  void ReapExpired();
  static constexpr std::chrono::seconds kReapInterval{30};

 private:
  // Drops the transfer records older than kTransferRecordKeepSeconds (the reaper calls it).
  void PruneTransferRecords();
  class HoldSend;  // one outgoing send, phase by phase (hold_send.h)
  // The store's blobs of one hold.
  static constexpr const char* kRamBlob = "ram";
  static constexpr const char* kDeviceStateBlob = "device-state";

  Result<HoldRow> Row(const std::string& vm);
  // Whether a new VM may be called `name`: not while a hold (or an expired hold's row) keeps it.
  Status NameHeld(const std::string& name);
  Status PutRow(const HoldRow& row);
  // Marks `vm` as having a hold operation in flight; AlreadyExists names the operation.
  Status Claim(const std::string& vm, const std::string& what);
  void Release(const std::string& vm);

  // The steps, in hold_take.cc and hold_restore.cc.
  // Each returns the operation's result.
  Result<nlohmann::json> TakeHold(const std::string& vm, Operation& op);
  // What the hold keeps of the VM, the owner's rules checked (sets row.expires_at).
  Result<HeldVm> WhatToKeep(const vm::VmLease& lease, HoldRow& row, const std::string& what);
  // Pause, device state, seal; the VM resumed and the lease released if that fails. Returns the
  // operation's figures.
  Result<nlohmann::json> SealWhilePaused(vm::VmLease& lease, const HoldRow& row,
                                         const HeldVm& held, const std::string& what,
                                         Operation& op);
  Result<store::HoldStats> SealBlobs(const HoldRow& row, const HeldVm& held,
                                     const vm::VmRecord& rec, int ram_fd, int device_state_fd,
                                     const std::string& what);
  Result<nlohmann::json> RestoreHold(const std::string& vm, const RestoreOptions& options,
                                     Operation& op);
  // The VM registered and started again from the hold; the operation's result.
  Result<nlohmann::json> Relaunch(const HoldRow& row, const HeldVm& held, bool wait_ready,
                                  Operation& op);
  // A held data disk put back where the launcher finds it (`dir`: the VM's directory); returns
  // the frozen images it lies on, nearest first.
  Result<std::vector<std::string>> LayOutDisk(const HoldRow& row, const HeldVm& held,
                                              const std::string& dir);
  Status ShredKey(const HoldRow& row);  // the hold's key and manifest (gone already: Ok)
  Status Shred(const HoldRow& row);     // those, and its row
  // A hold past its expiry: key and manifest shredded, the row kept as "expired".
  Status ShredExpired(const HoldRow& row);
  static Status ExpiredRefusal(const std::string& what, const HoldRow& row);
  nlohmann::json Describe(const HoldRow& row);

  // snapshot_send.cc, snapshot_receive.cc: `ferry snapshot send`. A snapshot lives in the store
  // as object "snap-<snapshot id>" (kind "snapshot") while a snapshot of that id is registered.
  static std::string SnapshotObjectId(const std::string& snapshot_id) {
    return "snap-" + snapshot_id;
  }
  // The key Claim takes for a store object being sealed, sent or received (never a VM name).
  static std::string ObjectClaim(const std::string& object_id) { return "object " + object_id; }
  Result<nlohmann::json> RunSnapshotSend(const std::string& name, const std::string& to,
                                         Operation& op);
  void ReceiveSnapshot(migrate::PeerLink& link, const migrate::HoldPrepareRequest& request);
  Result<nlohmann::json> ReceiveSnapshotObject(migrate::PeerLink& link,
                                               const migrate::HoldPrepareRequest& request,
                                               std::string& object_id, bool& committed);
  void ShredOrphanSnapshots();

  // hold_receive.cc
  Result<nlohmann::json> Receive(migrate::PeerLink& link, const migrate::HoldPrepareRequest& req,
                                 HoldRow& row, bool& journaled);
  bool TransferKept(const std::string& transfer);

  // hold_send.cc: after a restart in step "sent", or a "finish" whose answer was lost: asks the
  // receiver until it answers, then shreds the hold here ("held") or keeps it ("absent").
  // Returns the answer; an error when it did not answer by `deadline`.
  Result<migrate::SettledState> SettleSent(const HoldRow& row,
                                           std::chrono::steady_clock::time_point deadline);
  void SettleSentInBackground(const HoldRow& row, std::shared_ptr<Operation> op);

  // hold_recovery.cc
  void Recover();
  void RecoverRow(const HoldRow& row);
  // One per step a crash can leave a hold in; `what` names the hold in the log.
  void RecoverSending(const HoldRow& row, const std::string& what);
  void RecoverSent(const HoldRow& row, const std::string& what);
  void RecoverReceiving(const HoldRow& row, const std::string& what, bool durable);
  void RecoverUnsealed(const HoldRow& row, const std::string& what, bool paused_for_sealing);
  void RecoverDurable(const HoldRow& row, const std::string& what, bool durable, bool vm_here);
  void RecoverRestoring(const HoldRow& row, const std::string& what, bool vm_here, bool vm_runs);
  void ReaperLoop();

  vm::VmService& vms_;
  registry::Table<HoldRow> rows_;
  registry::Table<TransferRecord> transfers_;  // receiver: the transfers it kept
  snapshot::SnapshotTable snapshot_rows_;      // the snapshots whose store objects are kept
  store::Store& store_;
  migrate::MigrationService* const peers_;
  std::mutex mu_;
  std::set<std::string> busy_;  // VMs with a hold, restore or delete in flight
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
  std::condition_variable released_cv_;  // a VM left busy_
  int settling_ = 0;                     // background settles running; Stop waits for them
  bool detached_ = false;                // Stop unregistered from peers_
  std::thread reaper_;
};

}  // namespace ferry::hold
