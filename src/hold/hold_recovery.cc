// What a starting ferryd finishes of the holds and restores a crash interrupted, so that exactly
// one copy of each VM is left: the VM running here, or one durable hold (hold_journal.h).
#include <spdlog/spdlog.h>

#include "hold/hold_service.h"
#include "qemu/qmp_commands.h"

namespace ferry::hold {

void HoldService::Recover() {
  auto rows = rows_.List([](const Status& damaged) {
    spdlog::error("holds: {}; left as it is", damaged.message());
    return true;
  });
  if (!rows.ok()) {
    spdlog::error("holds: cannot read the registry's hold rows: {}", rows.status().message());
    return;
  }
  for (const auto& [name, row] : *rows) RecoverRow(row);
}

void HoldService::RecoverRow(const HoldRow& row) {
  const std::string what = "hold of vm " + row.vm;
  if (row.step == HoldStep::kExpired) return;  // shredded already; the row only says so
  const bool durable = store_.LoadHold(row.hold_id).ok();
  auto rec = vms_.Get(row.vm);
  const bool vm_here = rec.ok();
  const bool vm_runs = vm_here && vm::HasProcess(rec->state);
  switch (row.step) {
    case HoldStep::kExpired:
      return;
    case HoldStep::kSending:
      return RecoverSending(row, what);
    case HoldStep::kSent:
      return RecoverSent(row, what);
    case HoldStep::kReceiving:
      return RecoverReceiving(row, what, durable);
    case HoldStep::kSealing:
      if (!durable) {
        const bool paused_for_sealing =
            vm_runs && row.vm_was_running && rec->state == vm::VmState::kPaused;
        return RecoverUnsealed(row, what, paused_for_sealing);
      }
      [[fallthrough]];
    case HoldStep::kDurable:
      return RecoverDurable(row, what, durable, vm_here);
    case HoldStep::kRestoring:
      return RecoverRestoring(row, what, vm_here, vm_runs);
  }
}

void HoldService::RecoverSending(const HoldRow& row, const std::string& what) {
  // "finish" was never sent: the receiver drops its copy when the link ends.
  HoldRow back = row;
  back.step = HoldStep::kDurable;
  back.transfer.clear();
  back.peer.clear();
  rows_.Put(row.vm, back);
  spdlog::warn("{}: its send to {} was interrupted before it finished; the hold stays here",
               what, row.peer);
}

void HoldService::RecoverSent(const HoldRow& row, const std::string& what) {
  // Only the receiver knows whether it keeps its copy: ask it until it answers.
  if (peers_ == nullptr) {
    spdlog::error("{}: sent to {}, not settled, and this ferryd has no peers to ask; left "
                  "as it is", what, row.peer);
    return;
  }
  auto op = vms_.operations().Start("hold-send", row.vm);
  op->SetPhase("settling with " + row.peer + " after a ferryd restart", 95);
  spdlog::warn("{}: ferryd restarted after it sent finish to {}; asking it", what, row.peer);
  SettleSentInBackground(row, op);
}

void HoldService::RecoverReceiving(const HoldRow& row, const std::string& what, bool durable) {
  if (TransferKept(row.transfer) && durable) {
    // The transfer was recorded: the copy here is the hold.
    HoldRow done = row;
    done.step = HoldStep::kDurable;
    rows_.Put(row.vm, done);
    store_.UpdateState(row.hold_id, "durable");
    spdlog::warn("{}: received from {} before ferryd stopped; kept", what, row.peer);
    return;
  }
  Status dropped = Shred(row);
  spdlog::warn("{}: its receive from {} was interrupted; the copy here is dropped{}", what,
               row.peer, dropped.ok() ? "" : " (" + dropped.message() + ")");
}

void HoldService::RecoverUnsealed(const HoldRow& row, const std::string& what,
                                  bool paused_for_sealing) {
  // The hold never finished: the VM is the copy. It was paused for sealing: resume it.
  rows_.Delete(row.vm);
  if (paused_for_sealing) {
    auto resumed = vms_.Resume(row.vm);
    spdlog::warn("{}: interrupted before it was durable; dropped, the VM runs on{}", what,
                 resumed.ok() ? "" : " (resume: " + resumed.status().message() + ")");
  } else {
    spdlog::warn("{}: interrupted before it was durable; dropped", what);
  }
}

void HoldService::RecoverDurable(const HoldRow& row, const std::string& what, bool durable,
                                 bool vm_here) {
  if (!durable) {
    spdlog::error("{}: the registry says durable but the store has no valid manifest for "
                  "hold {}; left for `ferry store verify`", what, row.hold_id);
    return;
  }
  HoldRow done = row;
  done.step = HoldStep::kDurable;
  rows_.Put(row.vm, done);
  if (vm_here) {
    // Sealed, but the VM's copy was not yet removed: the hold is the copy.
    Status removed = vms_.Delete(row.vm, /*force=*/true);
    spdlog::warn("{}: durable; the VM's copy that was left here {}", what,
                 removed.ok() ? "is removed" : "could not be removed: " + removed.message());
  }
}

void HoldService::RecoverRestoring(const HoldRow& row, const std::string& what, bool vm_here,
                                   bool vm_runs) {
  if (vm_runs) {
    // The restored VM runs (the launcher keeps a resumed restore): it is the copy.
    Status shredded = Shred(row);
    spdlog::warn("{}: the restored VM runs; the hold is consumed{}", what,
                 shredded.ok() ? "" : " (shred: " + shredded.message() + ")");
    return;
  }
  if (vm_here) vms_.Delete(row.vm, /*force=*/true);  // a restore that never ran
  HoldRow back = row;
  back.step = HoldStep::kDurable;
  rows_.Put(row.vm, back);
  spdlog::warn("{}: its restore was interrupted; the hold is kept", what);
}

}  // namespace ferry::hold
