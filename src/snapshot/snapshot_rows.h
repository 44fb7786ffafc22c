// The registry's rows of snapshots and templates (registry/table.h): what ferryd alone writes
// about them, beside the manifest in the snapshot's directory.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "registry/table.h"

namespace ferry::snapshot {

struct SnapshotRow {
  std::string id;   // the snapshot's id: names its RAM image and its frozen disk
  std::string vm;   // the VM it was taken of (or sent from)
  std::string dir;  // STATE/snapshots/NAME
  std::string ram;  // RAM_DIR/snapshots/ID.ram
  // The owner policy's SHA-256 ("" without a policy), kept where ferryd alone writes, so that a
  // snapshot whose policy was taken out of its manifest is not cloned as one without. Absent
  // in rows of a ferryd older than the field: the manifest is all there is.
  std::optional<std::string> policy_sha256;
  std::string received_from;  // the host it came from (`snapshot send`); "" if taken here

  static constexpr std::string_view kKind = "snapshot";
  nlohmann::json ToJson() const;
  static Result<SnapshotRow> FromJson(const std::string& name, const nlohmann::json& j);
};

struct TemplateRow {
  std::string snapshot;        // what its clones are made of
  int pool_size = 0;           // warm-pool QEMUs kept ready
  bool owns_snapshot = false;  // made from a spec: its snapshot goes with it

  static constexpr std::string_view kKind = "template";
  nlohmann::json ToJson() const;
  static Result<TemplateRow> FromJson(const std::string& name, const nlohmann::json& j);
};

using SnapshotTable = registry::Table<SnapshotRow>;
using TemplateTable = registry::Table<TemplateRow>;

}  // namespace ferry::snapshot
