// Freezing a VM's data disk at a snapshot (QEMU external snapshot): the image the VM wrote so
// far becomes read-only and shared, and the VM goes on writing a new qcow2 overlay on it. Clones
// of the snapshot get overlays of their own on the same frozen image, so the snapshot's disk is
// never written by anyone.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_record.h"
#include "vm/vm_runtime.h"

namespace ferry::snapshot {

struct FrozenDisk {
  std::string frozen;              // the image as it was at the snapshot, now read-only
  std::string top;                 // the new overlay QEMU writes
  std::vector<std::string> chain;  // frozen, then what it lies on
};

// REQUIRES: the VM is paused (its disk holds still) and has a disk. `frozen_path` is on the
// same filesystem as the VM's disk (it is a hard link of it). On failure nothing changed: QEMU
// still writes the old image and no file was left behind.
Result<FrozenDisk> FreezeDisk(vm::VmRuntime& rt, const vm::VmRecord& vm,
                              const std::string& frozen_path, const std::string& new_top,
                              const std::string& qemu_img);

}  // namespace ferry::snapshot
