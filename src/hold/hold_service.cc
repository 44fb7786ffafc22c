// HoldService: the verbs that only read or drop a hold, the store's verbs, and the reaper. The
// steps of taking and restoring a hold are in hold_take.cc and hold_restore.cc; what a starting
// ferryd finishes is in hold_recovery.cc.
#include "hold/hold_service.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "core/guarded_thread.h"

namespace ferry::hold {

using nlohmann::json;

HoldService::HoldService(vm::VmService& vms, registry::Registry& registry, store::Store& store,
                         migrate::MigrationService* peers)
    : vms_(vms),
      rows_(registry),
      transfers_(registry),
      snapshot_rows_(registry),
      store_(store),
      peers_(peers) {
  // A row this ferryd cannot finish is logged and left; it must not stop ferryd starting.
  Status recovered = RunGuarded("finishing interrupted holds", [this] { Recover(); });
  if (!recovered.ok()) spdlog::error("{}", recovered.message());
  auto reaper = StartGuardedThread("the hold reaper", [this] { ReaperLoop(); });
  if (reaper.ok()) {
    reaper_ = std::move(reaper).value();
  } else {
    spdlog::error("expired holds will not be shredded until ferryd restarts: {}",
                  reaper.status().message());
  }
  // After Recover: a query about a transfer is answered from a settled journal.
  if (peers_) peers_->SetIncomingHolds(this);
  vms_.SetNameReservations([this](const std::string& name) { return NameHeld(name); });
}

Status HoldService::NameHeld(const std::string& name) {
  auto row = Row(name);
  if (row.status().code() == Status::Code::kNotFound) return Status::Ok();
  if (!row.ok()) return row.status().WithContext("vm " + name);
  if (row->step == HoldStep::kExpired) {
    return Status::AlreadyExists("vm " + name + ": its hold expired and keeps the name; " +
                                 "`ferry hold delete " + name + "` frees it");
  }
  return Status::AlreadyExists("vm " + name + " is held on this host (hold " + row->hold_id +
                               ", " + HoldStepName(row->step) + "); `ferry hold restore " + name +
                               "` brings it back, `ferry hold delete " + name +
                               "` destroys it, or choose another name");
}

HoldService::~HoldService() {
  Stop();
  if (reaper_.joinable()) reaper_.join();
}

void HoldService::Stop() {
  vms_.SetNameReservations(nullptr);
  std::unique_lock<std::mutex> lock(mu_);
  if (!detached_ && peers_) peers_->SetIncomingHolds(nullptr);
  detached_ = true;
  stopping_ = true;
  reaper_cv_.notify_all();
  released_cv_.notify_all();
  released_cv_.wait(lock, [this] { return settling_ == 0; });
}

Result<HoldRow> HoldService::Row(const std::string& vm) {
  FERRY_ASSIGN_OR_RETURN(std::optional<HoldRow> row, rows_.Find(vm));
  if (row) return std::move(*row);
  return Status::NotFound("no hold of vm " + vm + "; `ferry hold list` shows the held VMs");
}

Status HoldService::PutRow(const HoldRow& row) { return rows_.Put(row.vm, row); }

Status HoldService::Claim(const std::string& vm, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!busy_.insert(vm).second) {
    return Status::FailedPrecondition(what + ": another hold operation on vm " + vm +
                                      " is in progress; wait for it (`ferry operation list`)");
  }
  return Status::Ok();
}

void HoldService::Release(const std::string& vm) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(vm);
  released_cv_.notify_all();
}

Result<std::shared_ptr<Operation>> HoldService::Hold(const std::string& vm) {
  const std::string what = "hold of vm " + vm;
  if (auto row = Row(vm); row.ok()) {
    if (row->step != HoldStep::kExpired) {
      return Status::AlreadyExists(what + ": vm " + vm + " is already held; restore or delete it");
    }
    // Only the record of an expired, shredded hold: a new hold of the name replaces it.
    FERRY_RETURN_IF_ERROR(rows_.Delete(vm));
  }
  FERRY_RETURN_IF_ERROR(vms_.Get(vm).status());
  FERRY_RETURN_IF_ERROR(Claim(vm, what));
  auto op = vms_.operations().Start("hold", vm);
  vms_.InBackground(
      [this, vm, op] {
        // Released before the operation ends: its waiters may act on the hold at once.
        Result<json> held = TakeHold(vm, *op);
        Release(vm);
        if (held.ok()) op->Succeed(*held);
        if (!held.ok()) op->Fail(held.status());
      },
      op);
  return op;
}

Result<std::shared_ptr<Operation>> HoldService::Restore(const std::string& vm,
                                                        const RestoreOptions& options) {
  const std::string what = "restore of the hold of vm " + vm;
  FERRY_ASSIGN_OR_RETURN(HoldRow row, Row(vm));
  if (row.step == HoldStep::kExpired) return ExpiredRefusal(what, row);
  if (row.step != HoldStep::kDurable) {
    return Status::FailedPrecondition(what + ": the hold is " + HoldStepName(row.step) +
                                      ", not durable; wait for its operation to end");
  }
  if (vms_.Exists(vm)) {
    return Status::AlreadyExists(what + ": a vm named " + vm + " exists here; delete it first");
  }
  FERRY_RETURN_IF_ERROR(Claim(vm, what));
  auto op = vms_.operations().Start("hold-restore", vm);
  vms_.InBackground(
      [this, vm, options, op] {
        Result<json> restored = RestoreHold(vm, options, *op);
        Release(vm);
        if (restored.ok()) op->Succeed(*restored);
        if (!restored.ok()) op->Fail(restored.status());
      },
      op);
  return op;
}

json HoldService::Describe(const HoldRow& row) {
  json j = {{"vm", row.vm},
            {"hold_id", row.hold_id},
            {"step", HoldStepName(row.step)},
            {"held_at", row.held_at},
            {"expires_at", row.expires_at}};
  if (row.step == HoldStep::kExpired) {
    j["shredded"] = true;
    return j;
  }
  auto manifest = store_.LoadHold(row.hold_id);
  if (!manifest.ok()) {
    j["problem"] = manifest.status().message();
    return j;
  }
  uint64_t size = 0;
  json blobs = json::array();
  for (const auto& b : manifest->blobs) {
    size += b.size;
    blobs.push_back({{"name", b.name}, {"size", b.size}, {"chunks", b.chunks},
                     {"zero_chunks", b.zero_chunks}});
  }
  j["size_bytes"] = size;
  j["blobs"] = blobs;
  j["owner"] = manifest->header.owner_fingerprint;
  j["held_on"] = manifest->signer_host_id;
  return j;
}

json HoldService::List() {
  json out = json::array();
  auto rows = rows_.List([](const Status&) { return true; });  // a damaged row is not listed
  if (!rows.ok()) return out;
  for (const auto& [name, row] : *rows) out.push_back(Describe(row));
  return out;
}

Result<json> HoldService::Show(const std::string& vm) {
  FERRY_ASSIGN_OR_RETURN(HoldRow row, Row(vm));
  json j = Describe(row);
  if (row.expires_at != 0 && row.step != HoldStep::kExpired) {
    // The reaper looks every kReapInterval: a hold is shredded at most that long after expiry.
    j["shredded_by"] = row.expires_at + kReapInterval.count();
  }
  return j;
}

Status HoldService::ShredKey(const HoldRow& row) {
  Status shredded = store_.ShredHold(row.hold_id);
  if (!shredded.ok() && shredded.code() != Status::Code::kNotFound) {
    return shredded.WithContext("hold of vm " + row.vm);
  }
  return Status::Ok();
}

Status HoldService::Shred(const HoldRow& row) {
  FERRY_RETURN_IF_ERROR(ShredKey(row));
  return rows_.Delete(row.vm);
}

Status HoldService::ShredExpired(const HoldRow& row) {
  FERRY_RETURN_IF_ERROR(ShredKey(row));
  // The row stays, saying what became of the hold, until the user deletes it.
  HoldRow expired = row;
  expired.step = HoldStep::kExpired;
  return PutRow(expired);
}

Status HoldService::ExpiredRefusal(const std::string& what, const HoldRow& row) {
  return Status::PermissionDenied(what + ": the hold expired at " +
                                  std::to_string(row.expires_at) +
                                  " (unix seconds; the owner's policy limits holds) and its key is "
                                  "shredded; `ferry hold delete " + row.vm + "` forgets it");
}

Status HoldService::Delete(const std::string& vm) {
  const std::string what = "delete of the hold of vm " + vm;
  FERRY_ASSIGN_OR_RETURN(HoldRow row, Row(vm));
  FERRY_RETURN_IF_ERROR(Claim(vm, what));
  Status st = Shred(row);
  Release(vm);
  if (st.ok()) spdlog::info("hold of vm {} (id {}) shredded", vm, row.hold_id);
  return st;
}

Result<json> HoldService::StoreShow() {
  FERRY_ASSIGN_OR_RETURN(store::StoreStats s, store_.Stats());
  return json{{"holds", s.holds},
              {"chunks", s.chunks},
              {"stored_bytes", s.stored_bytes},
              {"logical_bytes", s.logical_bytes},
              {"dedup_ratio", s.dedup_ratio}};
}

Result<json> HoldService::StoreVerify() {
  FERRY_ASSIGN_OR_RETURN(store::VerifyReport r, store_.Verify());
  return json{{"ok", r.ok()},
              {"chunks_checked", r.chunks_checked},
              {"holds_checked", r.holds_checked},
              {"problems", r.problems}};
}

Result<json> HoldService::StoreCollect() {
  FERRY_ASSIGN_OR_RETURN(store::CollectReport r, store_.Collect());
  return json{{"chunks_removed", r.chunks_removed}, {"bytes_freed", r.bytes_freed}};
}

void HoldService::ReapExpired() {
  ShredOrphanSnapshots();
  auto rows = rows_.List([](const Status&) { return true; });  // Recover logged damaged rows
  if (!rows.ok()) return;
  const int64_t now = std::time(nullptr);
  for (const auto& [name, row] : *rows) {
    if (row.expires_at == 0 || row.expires_at > now) continue;
    if (row.step != HoldStep::kDurable || !Claim(name, "reaper").ok()) continue;
    Status st = ShredExpired(row);
    Release(name);
    if (st.ok()) {
      spdlog::info("hold of vm {} expired (the owner allowed it until {}): shredded", name,
                   row.expires_at);
    } else {
      spdlog::warn("hold of vm {} expired but could not be shredded: {}", name, st.message());
    }
  }
}

void HoldService::PruneTransferRecords() {
  auto records = transfers_.List([](const Status&) { return true; });
  if (!records.ok()) return;
  const int64_t now = std::time(nullptr);
  for (const auto& [transfer, record] : *records) {
    // A record of an older ferryd has no time: kept.
    if (record.at == 0 || now - record.at <= kTransferRecordKeepSeconds) continue;
    Status dropped = transfers_.Delete(transfer);
    if (dropped.ok()) {
      spdlog::info("record of hold transfer {} pruned after {} days", transfer,
                   kTransferRecordKeepSeconds / 86400);
    }
  }
}

void HoldService::ReaperLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    // One bad row or store error must not end the reaper for the daemon's lifetime.
    Status reaped = RunGuarded("reaping expired holds", [this] {
      ReapExpired();
      PruneTransferRecords();
    });
    if (!reaped.ok()) spdlog::error("{}", reaped.message());
    lock.lock();
    reaper_cv_.wait_for(lock, kReapInterval, [this] { return stopping_; });
  }
}

}  // namespace ferry::hold
