#include "vm/vm_origin.h"

namespace ferry::vm {
namespace {

using nlohmann::json;

std::string StringMember(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool BoolMember(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

struct ToJsonVisitor {
  json operator()(const BootedOrigin&) const { return json::object(); }
  json operator()(const CloneOrigin& c) const {
    json j = {{"snapshot", c.snapshot}, {"snapshot_id", c.snapshot_id}, {"source_vm", c.source_vm}};
    if (c.warm_pool) {
      j["warm_pool"] = true;
      j["identity_primed"] = c.identity_primed;
    }
    return j;
  }
  json operator()(const MigrationOrigin& m) const {
    return {{"migrated_from", m.migrated_from}, {"migration", m.migration}};
  }
  json operator()(const HoldOrigin& h) const {
    return {{"hold", h.hold}, {"held_at", h.held_at}, {"held_on", h.held_on}};
  }
};

}  // namespace

json OriginToJson(const VmOrigin& origin) { return std::visit(ToJsonVisitor{}, origin); }

VmOrigin OriginFromJson(const json& j) {
  if (!j.is_object()) return BootedOrigin{};
  if (j.contains("hold")) {
    auto at = j.find("held_at");
    return HoldOrigin{StringMember(j, "hold"),
                      at != j.end() && at->is_number_integer() ? at->get<int64_t>() : 0,
                      StringMember(j, "held_on")};
  }
  if (j.contains("migration")) {
    return MigrationOrigin{StringMember(j, "migrated_from"), StringMember(j, "migration")};
  }
  if (j.contains("snapshot")) {
    return CloneOrigin{StringMember(j, "snapshot"), StringMember(j, "snapshot_id"),
                       StringMember(j, "source_vm"), BoolMember(j, "warm_pool"),
                       BoolMember(j, "identity_primed")};
  }
  return BootedOrigin{};
}

}  // namespace ferry::vm
