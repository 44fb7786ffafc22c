#include "migrate/migration_rows.h"

#include "core/json_fields.h"

namespace ferry::migrate {

using nlohmann::json;

json PeerRow::ToJson() const { return {{"address", address}}; }

Result<PeerRow> PeerRow::FromJson(const std::string& host_id, const json& j) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, "the row of peer " + host_id));
  PeerRow row;
  FERRY_ASSIGN_OR_RETURN(row.address, f.String("address"));
  return row;
}

const char* JournalPhaseName(JournalPhase phase) {
  return phase == JournalPhase::kFinish ? "finish" : "perform";
}

std::optional<JournalPhase> JournalPhaseFromName(std::string_view name) {
  if (name == "perform") return JournalPhase::kPerform;
  if (name == "finish") return JournalPhase::kFinish;
  return std::nullopt;
}

json JournalRow::ToJson() const {
  return {{"vm", vm}, {"to", to}, {"phase", JournalPhaseName(phase)}};
}

Result<JournalRow> JournalRow::FromJson(const std::string& id, const json& j) {
  const std::string what = "the journal row of migration " + id;
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, what));
  JournalRow row;
  FERRY_ASSIGN_OR_RETURN(row.vm, f.String("vm"));
  FERRY_ASSIGN_OR_RETURN(row.to, f.String("to"));
  FERRY_ASSIGN_OR_RETURN(std::string phase, f.String("phase"));
  auto parsed = JournalPhaseFromName(phase);
  if (!parsed) return Status::Corruption(what + ": unknown phase \"" + phase + "\"");
  row.phase = *parsed;
  return row;
}

}  // namespace ferry::migrate
