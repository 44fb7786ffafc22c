#include "hold/hold_journal.h"

#include "core/json_fields.h"

namespace ferry::hold {

const char* HoldStepName(HoldStep step) {
  switch (step) {
    case HoldStep::kSealing:
      return "sealing";
    case HoldStep::kDurable:
      return "durable";
    case HoldStep::kRestoring:
      return "restoring";
    case HoldStep::kExpired:
      return "expired";
    case HoldStep::kSending:
      return "sending";
    case HoldStep::kSent:
      return "sent";
    case HoldStep::kReceiving:
      return "receiving";
  }
  return "?";
}

std::optional<HoldStep> HoldStepFromName(const std::string& name) {
  for (HoldStep s : {HoldStep::kSealing, HoldStep::kDurable, HoldStep::kRestoring,
                     HoldStep::kExpired, HoldStep::kSending, HoldStep::kSent,
                     HoldStep::kReceiving}) {
    if (name == HoldStepName(s)) return s;
  }
  return std::nullopt;
}

nlohmann::json HoldRow::ToJson() const {
  nlohmann::json j = {{"hold_id", hold_id},
                      {"step", HoldStepName(step)},
                      {"held_at", held_at},
                      {"expires_at", expires_at},
                      {"vm_was_running", vm_was_running}};
  if (!transfer.empty()) j["transfer"] = transfer;
  if (!peer.empty()) j["peer"] = peer;
  if (sent_at != 0) j["sent_at"] = sent_at;
  return j;
}

Result<HoldRow> HoldRow::FromJson(const std::string& vm, const nlohmann::json& j) {
  const std::string what = "the registry's hold row of vm " + vm;
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, what));
  HoldRow row;
  row.vm = vm;
  FERRY_ASSIGN_OR_RETURN(row.hold_id, f.String("hold_id"));
  FERRY_ASSIGN_OR_RETURN(std::string step, f.String("step"));
  auto parsed = HoldStepFromName(step);
  if (!parsed) return Status::Corruption(what + ": unknown step \"" + step + "\"");
  row.step = *parsed;
  FERRY_ASSIGN_OR_RETURN(row.held_at, f.Int("held_at"));
  FERRY_ASSIGN_OR_RETURN(row.expires_at, f.Int("expires_at"));
  FERRY_ASSIGN_OR_RETURN(row.vm_was_running, f.Bool("vm_was_running", false));
  FERRY_ASSIGN_OR_RETURN(row.transfer, f.String("transfer", ""));
  FERRY_ASSIGN_OR_RETURN(row.peer, f.String("peer", ""));
  FERRY_ASSIGN_OR_RETURN(row.sent_at, f.Int("sent_at", 0));
  const bool sending = row.step == HoldStep::kSending || row.step == HoldStep::kSent ||
                       row.step == HoldStep::kReceiving;
  if (sending && (row.transfer.empty() || row.peer.empty())) {
    return Status::Corruption(what + ": step " + step + " without its transfer and peer");
  }
  return row;
}

nlohmann::json TransferRecord::ToJson() const {
  nlohmann::json j = {{"vm", vm}, {"from", from}};
  if (at != 0) j["at"] = at;
  return j;
}

Result<TransferRecord> TransferRecord::FromJson(const std::string& transfer,
                                                const nlohmann::json& j) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f,
                         JsonFields::Of(j, "the registry's record of hold transfer " + transfer));
  TransferRecord r;
  FERRY_ASSIGN_OR_RETURN(r.vm, f.String("vm", ""));
  FERRY_ASSIGN_OR_RETURN(r.from, f.String("from", ""));
  FERRY_ASSIGN_OR_RETURN(r.at, f.Int("at", 0));
  return r;
}

bool TransferRecordMayBeGone(const HoldRow& row, int64_t now) {
  constexpr int64_t kMargin = 86400;
  return row.sent_at != 0 && now - row.sent_at > kTransferRecordKeepSeconds - kMargin;
}

}  // namespace ferry::hold
