// Where a VM came from: the "origin" member of its record in the registry, shown by the API
// (`ferry vm show --json`). The JSON is the format, and these types are how ferryd writes and
// reads it:
//
//   booted from an image    {}
//   a clone of a snapshot   {"snapshot": NAME, "snapshot_id": ID, "source_vm": VM}, plus
//                           "warm_pool": true, "identity_primed": BOOL when its QEMU came from a
//                           template's warm pool
//   an incoming migration   {"migrated_from": HOST, "migration": ID}
//   restored from a hold    {"hold": ID, "held_at": UNIX_SECONDS, "held_on": HOST}
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

namespace ferry::vm {

struct BootedOrigin {
  bool operator==(const BootedOrigin&) const = default;
};

struct CloneOrigin {
  std::string snapshot;          // the snapshot's name
  std::string snapshot_id;       // and id, which a later snapshot of the same name does not share
  std::string source_vm;         // the VM the snapshot was taken of
  bool warm_pool = false;        // its QEMU came from a template's warm pool
  bool identity_primed = false;  // warm_pool, and the guest's identity was made while it waited
  bool operator==(const CloneOrigin&) const = default;
};

struct MigrationOrigin {
  std::string migrated_from;  // the source host's id
  std::string migration;      // the migration's id (the source's operation id)
  bool operator==(const MigrationOrigin&) const = default;
};

// The same machine, brought back from a hold (hold/hold_service.h).
struct HoldOrigin {
  std::string hold;     // the hold's id in the store
  int64_t held_at = 0;  // unix seconds
  std::string held_on;  // the host that sealed it ("" when unknown)
  bool operator==(const HoldOrigin&) const = default;
};

using VmOrigin = std::variant<BootedOrigin, CloneOrigin, MigrationOrigin, HoldOrigin>;

nlohmann::json OriginToJson(const VmOrigin& origin);
// Reads what OriginToJson writes. A "hold" member makes a HoldOrigin, a "migration" member a
// MigrationOrigin, else a
// "snapshot" member a CloneOrigin, else it is a BootedOrigin. The registry is ferryd's own
// data, but a member of the wrong type reads as empty (or false) rather than failing the VM.
VmOrigin OriginFromJson(const nlohmann::json& j);

}  // namespace ferry::vm
