// The decisions of taking a snapshot (snapshot_take.cc carries them out), kept apart and pure
// (or run over steps given to them) so that every outcome has a unit test.
//
//   how the RAM is copied   live while the guest runs, unless the VM is paused, ferryd was told
//                           --snapshot-copy paused, or its disk cannot be frozen mid-copy
//   a copy while paused     a running VM is stopped, captured and resumed whatever the capture
//                           did; a VM already paused is neither stopped nor resumed
//   the steps in order      prepare, capture, write the directory, register; the first that
//                           fails ends the take, and what the earlier ones made is discarded
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "snapshot/snapshot_service.h"
#include "vm/vm_record.h"

namespace ferry::snapshot {

// A data disk can be frozen in the middle of a live copy only when its top image's file is a
// block node of its own (qemu::FileNodeName of `file_node`): `node_names` are the block nodes
// QEMU has, or an error when it could not say. A VM without a disk (`has_disk` false) can.
bool DiskAllowsLiveCopy(bool has_disk, const Result<std::vector<std::string>>& node_names,
                        const std::string& file_node);

// How a VM in `state` is copied under ferryd's `mode`.
SnapshotCopy CopyFor(vm::VmState state, SnapshotCopy mode, bool disk_allows_live);

// Copies with the guest paused: `stop` (only if `running`), `capture`, then `resume` (only if it
// was stopped here) whatever `capture` returned. The capture's error comes first; a resume that
// failed is Unavailable.
Status CopyWhilePaused(bool running, const std::function<Status()>& stop,
                       const std::function<Status()>& capture,
                       const std::function<Status()>& resume);

// The steps of one take, in order. Discard undoes what the steps made (a frozen disk stays: the
// VM writes its new overlay already).
class TakeSteps {
 public:
  virtual ~TakeSteps() = default;
  virtual Status Prepare() = 0;   // the partial directory
  virtual Status Capture() = 0;   // RAM image, device state, frozen disk
  virtual Status WriteDir() = 0;  // manifest; the partial directory put in place
  virtual Status Register() = 0;  // the registry row: from here the snapshot exists
  virtual void Discard() = 0;
};

// Runs the steps; the first failure is returned after Discard.
Status RunTake(TakeSteps& steps);

}  // namespace ferry::snapshot
