// What a hold keeps of its VM besides memory and devices: enough to bring back the same
// machine — its spec (with the owner's signed policy), the MAC its NIC had, its VM generation
// ID and the owner it was pinned to. Restore is not a clone: nothing of this is made anew.
//
// Stored in the hold's signed manifest as one JSON text (the store treats it as opaque):
//   {"spec": {...VmSpec...}, "mac": "52:54:00:..", "vmgenid": "<guid or empty>",
//    "owner": "<64 hex or empty>", "vm_id": "<16 hex>",
//    "disk_chain": ["<ID>.qcow2", ...]}   (the frozen images below a data disk, nearest first)
// It is parsed again on every restore with the limits of untrusted input: the manifest's
// signature says this host wrote it, not that this version of ferry can read it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/guid.h"
#include "core/mac_address.h"
#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::hold {

inline constexpr size_t kMaxHeldVmBytes = 256 * 1024;
inline constexpr size_t kMaxDiskChain = 256;

// The store's blob of a held disk: "disk" for the image the VM writes, "disk-base-N" for the
// N-th frozen image below it (0 nearest).
std::string DiskBlobName(int base_index);  // -1: the top
// A frozen image's file name as ferryd makes it: 1-64 of [a-z0-9] and ".qcow2".
bool IsFrozenImageName(const std::string& name);

struct HeldVm {
  vm::VmSpec spec;
  MacAddress mac;
  std::optional<Guid> vmgenid;
  std::string owner;  // fingerprint the VM was pinned to at creation, "" for none
  std::string vm_id;  // the id it had where it was held (for logs; a restore gets a new one)
  // A VM with a data disk: the file names of the frozen images its disk lies on, nearest first
  // (STATE/disks/NAME); the disk itself and each of them are blobs of the hold (DiskBlobName).
  std::vector<std::string> disk_chain;

  std::string ToText() const;
  // `what` names the hold in errors ("hold of vm web-1").
  static Result<HeldVm> Parse(const std::string& text, const std::string& what);
};

}  // namespace ferry::hold
