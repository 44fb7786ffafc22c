// The registry's rows of the migration service (registry/table.h): the peers it knows and the
// journal of its outgoing migrations.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "registry/table.h"

namespace ferry::migrate {

// A known peer (the row's name: its host id).
struct PeerRow {
  std::string address;  // host:port, as ParsePeerAddress wrote it

  static constexpr std::string_view kKind = "peer";
  nlohmann::json ToJson() const;
  static Result<PeerRow> FromJson(const std::string& host_id, const nlohmann::json& j);
};

// The phase an outgoing migration is journaled in: "perform" (QEMU may be sending; a restart
// rolls back) or "finish" (the destination may run the guest; a restart asks it).
enum class JournalPhase { kPerform, kFinish };
const char* JournalPhaseName(JournalPhase phase);
std::optional<JournalPhase> JournalPhaseFromName(std::string_view name);

// An outgoing migration not yet settled (the row's name: the migration's id).
struct JournalRow {
  std::string vm;
  std::string to;  // the destination's host id
  JournalPhase phase = JournalPhase::kPerform;

  static constexpr std::string_view kKind = "migration-out";
  nlohmann::json ToJson() const;
  static Result<JournalRow> FromJson(const std::string& id, const nlohmann::json& j);
};

using PeerTable = registry::Table<PeerRow>;
using JournalTable = registry::Table<JournalRow>;

}  // namespace ferry::migrate
