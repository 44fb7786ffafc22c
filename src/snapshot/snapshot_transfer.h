// A snapshot as `ferry snapshot send` takes it from this host and as it arrives on another: the
// snapshot's side of the transfer; the store and the peer link are the hold service's
// (hold/snapshot_send.cc, hold/snapshot_receive.cc).
//
// These work on the registry rows and directories SnapshotService keeps (snapshot_service.h),
// so that the hold service, which owns the store and the peer port, needs no SnapshotService.
//
// Thread-safety: as the registry and the filesystem are; two adoptions of one name race only to
// the registry's insert, which one of them loses (its files are removed).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/status.h"
#include "snapshot/snapshot_manifest.h"
#include "snapshot/snapshot_rows.h"
#include "vm/vm_service.h"
#include "vm/vm_spec.h"

namespace ferry::snapshot {

// One registered snapshot, found and verified.
struct StoredSnapshot {
  std::string name, dir, ram;  // the RAM image's path on the RAM directory
  // The policy digest the registry recorded when it was taken; unset for old rows.
  std::optional<std::string> policy_sha256;
  SnapshotManifest manifest;
  vm::VmSpec spec;  // of the VM it was taken of, policy included
};

// Finds snapshot `name` (NotFound says how to list them) and loads its manifest.
Result<StoredSnapshot> FindStoredSnapshot(SnapshotTable& rows, const std::string& name);

// PermissionDenied naming the VM and owner when the owner's policy forbids clones of
// `snapshot`'s VM (the policy it carries, which must also be the one the registry recorded, and
// the VM's current one while the VM is here). SnapshotService::CheckClonable uses it.
Status CheckSnapshotClonable(vm::VmService& vms, const StoredSnapshot& snapshot,
                             const std::string& what);

// Writes one file of a received snapshot into `fd` (the RAM image or the device state).
using BlobWriter = std::function<Status(int fd)>;

// Makes a received snapshot one of this host's: the RAM image (RAM_DIR/snapshots/ID.ram, shared
// with clones' QEMUs), the directory (device state, RAM link, manifest) and the registry row.
// Everything is verified against `manifest` (device state SHA-256, RAM chunk table) before the
// row makes it visible; any failure leaves nothing. AlreadyExists when the name or id is taken;
// ResourceExhausted when the RAM directory cannot spare the image. `from`: the sending host.
Status AdoptReceivedSnapshot(vm::VmService& vms, SnapshotTable& rows,
                             const SnapshotManifest& manifest, const std::string& from,
                             const BlobWriter& write_ram, const BlobWriter& write_device_state);

}  // namespace ferry::snapshot
