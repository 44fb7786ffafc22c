#include "snapshot/snapshot_rows.h"

#include "core/json_fields.h"

namespace ferry::snapshot {

using nlohmann::json;

json SnapshotRow::ToJson() const {
  json j = {{"id", id}, {"vm", vm}, {"dir", dir}, {"ram", ram}};
  if (policy_sha256) j["policy_sha256"] = *policy_sha256;
  if (!received_from.empty()) j["received_from"] = received_from;
  return j;
}

Result<SnapshotRow> SnapshotRow::FromJson(const std::string& name, const json& j) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, "the row of snapshot " + name));
  SnapshotRow row;
  FERRY_ASSIGN_OR_RETURN(row.id, f.String("id"));
  FERRY_ASSIGN_OR_RETURN(row.vm, f.String("vm", ""));
  FERRY_ASSIGN_OR_RETURN(row.dir, f.String("dir"));
  FERRY_ASSIGN_OR_RETURN(row.ram, f.String("ram"));
  if (j.contains("policy_sha256")) {
    FERRY_ASSIGN_OR_RETURN(row.policy_sha256, f.String("policy_sha256"));
  }
  FERRY_ASSIGN_OR_RETURN(row.received_from, f.String("received_from", ""));
  if (row.id.empty() || row.dir.empty() || row.ram.empty()) {
    return Status::Corruption("the row of snapshot " + name + " has an empty id, dir or ram");
  }
  return row;
}

json TemplateRow::ToJson() const {
  return {{"snapshot", snapshot}, {"pool_size", pool_size}, {"owns_snapshot", owns_snapshot}};
}

Result<TemplateRow> TemplateRow::FromJson(const std::string& name, const json& j) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, "the row of template " + name));
  TemplateRow row;
  FERRY_ASSIGN_OR_RETURN(row.snapshot, f.String("snapshot"));
  FERRY_ASSIGN_OR_RETURN(int64_t size, f.Int("pool_size", 0));
  if (size < 0 || size > 1024) {
    return Status::Corruption("the row of template " + name + " has a pool size of " +
                              std::to_string(size));
  }
  row.pool_size = static_cast<int>(size);
  FERRY_ASSIGN_OR_RETURN(row.owns_snapshot, f.Bool("owns_snapshot", false));
  return row;
}

}  // namespace ferry::snapshot
