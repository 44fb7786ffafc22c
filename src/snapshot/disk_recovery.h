// What a starting ferryd does with the data-disk files a snapshot left unfinished.
//
// A snapshot of a VM with a disk (snapshot_service.cc, disk_freeze.cc) pauses the guest and:
//   1. links the VM's top image to STATE/disks/ID.qcow2 (the frozen image, F)
//   2. makes an overlay VMDIR/disk-ID.qcow2 (T) on F with qemu-img
//   3. hands T to QEMU and switches the disk to it (blockdev-snapshot; T's node is top-disk-ID)
//   4. unlinks the old top's name (F keeps the image) and makes F read-only
//   5. records T as the VM's disk and F at the head of its chain
//   6. copies the RAM, resumes the guest, writes and registers the snapshot.
// A ferryd that dies before 3 leaves F (a second name of the VM's top) and T (an overlay nothing
// uses, and its qemu-img log if it died in 2): leftovers. One that dies after 3 and before 5
// leaves a VM whose QEMU writes T while its record still names the old top (after 4, a file
// that no longer exists): T and F hold the VM's disk, and the record is what is wrong. After 5
// only the snapshot is unfinished; the existing snapshot sweep removes its directory, and F stays
// as long as the VM's disk lies on it. A frozen image no VM's disk lies on and no snapshot keeps
// (such a VM deleted later) is a leftover too.
//
// PlanDiskRecovery decides, from what ferryd finds, which records to finish (roll forward to T)
// and which files to remove; it touches nothing. Whatever it cannot be sure of it keeps.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "vm/vm_service.h"

namespace ferry::snapshot {

// One registered VM with a data disk, as a starting ferryd finds it.
struct VmDiskState {
  std::string vm;
  std::string dir;                 // its directory
  std::string top;                 // its record's disk_path
  std::vector<std::string> chain;  // its record's disk_chain
  bool top_exists = false;
  // Its QEMU: none runs, or it runs and says which node its disk writes, or it runs and could
  // not be asked (then nothing of this VM, and no frozen image, is removed).
  enum class Qemu { kNotRunning, kNode, kUnknown };
  Qemu qemu = Qemu::kNotRunning;
  std::string qemu_node;
  // The disk files in `dir` (disk.qcow2, disk-ID.qcow2, and qemu-img logs NAME.qemu-img.log), as
  // full paths; for each image among them, the backing file its header names ("" if none or
  // unreadable).
  std::vector<std::string> files;
  std::map<std::string, std::string> backing;
};

struct DiskStartState {
  std::string frozen_dir;                 // STATE/disks
  std::vector<std::string> frozen_files;  // its *.qcow2, as full paths
  std::vector<VmDiskState> vms;
  // The frozen images the registered snapshots keep (each one's own and its chain), and whether
  // every registered snapshot could be read: if not, no frozen image is removed.
  std::set<std::string> kept_by_snapshots;
  bool snapshots_known = true;
};

// A record to finish: the snapshot's switch happened, its record update did not.
struct DiskRollForward {
  std::string vm;
  std::string top;                 // T, which QEMU writes
  std::vector<std::string> chain;  // F, then the old chain
  std::string frozen;              // F (to be made read-only, as step 4 would have)
  std::string why;
};

struct DiskRemoval {
  std::string path;
  std::string why;
};

struct DiskRecoveryPlan {
  std::vector<DiskRollForward> roll_forward;  // first
  std::vector<DiskRemoval> remove;            // then, once every roll-forward is recorded
  std::vector<std::string> kept;              // why something that looked left over stays
};

// The name QEMU gives the overlay node of a snapshot's disk T = DIR/disk-ID.qcow2: "top-disk-ID".
std::string OverlayNodeName(const std::string& overlay_path);

DiskRecoveryPlan PlanDiskRecovery(const DiskStartState& state);

// Finds what PlanDiskRecovery needs (every VM record with a disk, its QEMU's answer, the files
// in its directory and in STATE/disks) and carries the plan out, one log line for each record
// finished, file removed and thing kept. Removes nothing if a record could not be finished.
// Paths are compared in canonical form, so a state directory given another way than when a
// record was written does not make an image look unused.
// `kept_by_snapshots` and `snapshots_known` are as in DiskStartState.
// REQUIRES: `vms` has re-adopted its QEMUs and serves nobody yet.
// `registry` holds the VMs' rows.
void RecoverDisks(vm::VmService& vms, registry::Registry& registry,
                  const std::set<std::string>& kept_by_snapshots, bool snapshots_known);

}  // namespace ferry::snapshot
