#include "migrate/migration_messages.h"

#include <iterator>
#include <set>

#include "core/ids.h"
#include "core/untrusted_json.h"
#include "crypto/owner_policy.h"
#include "migrate/migration_protocol.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;

// Reads the members of one message: each at most once, with its type checked, and the members
// not read refused at the end.
class Members {
 public:
  Members(const json& object, const char* type) : object_(object), type_(type) {}

  // A string of at most `max_chars`, control characters shown as '?'. Absent: nullopt when
  // `optional`, else an error.
  Result<std::optional<std::string>> String(const char* key, size_t max_chars, bool optional) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (optional) return std::optional<std::string>();
      return Bad(std::string("has no \"") + key + "\"");
    }
    if (!it->is_string()) return Bad(std::string("\"") + key + "\" is not a string");
    std::string value = it->get<std::string>();
    if (value.size() > max_chars) {
      return Bad(std::string("\"") + key + "\" is longer than " + std::to_string(max_chars) +
                 " bytes");
    }
    for (char& c : value) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return std::optional<std::string>(std::move(value));
  }
  Result<std::string> Required(const char* key, size_t max_chars) {
    FERRY_ASSIGN_OR_RETURN(auto value, String(key, max_chars, false));
    return std::move(*value);
  }
  Result<const json*> Object(const char* key) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return Bad(std::string("has no \"") + key + "\"");
    if (!it->is_object()) return Bad(std::string("\"") + key + "\" is not an object");
    return &*it;
  }
  // Every member was read: anything else is a rule or a field this version does not know.
  Status NoOthers() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (!read_.count(it.key())) {
        std::string key = it.key().substr(0, 32);
        for (char& c : key) {
          if (c < ' ' || c > '~') c = '?';
        }
        return Bad("has an unknown member \"" + key + "\"");
      }
    }
    return Status::Ok();
  }
  Status Bad(const std::string& why) const {
    return Status::InvalidArgument(std::string("peer message \"") + type_ + "\" " + why);
  }

 private:
  const json& object_;
  const char* type_;
  std::set<std::string> read_ = {"type"};
};

Status CheckMigrationId(const Members& m, const std::string& id) {
  if (id.empty()) return m.Bad("has an empty \"migration\"");
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return m.Bad("has a \"migration\" id with a character not in [a-z0-9-]");
    }
  }
  return Status::Ok();
}

Result<PrepareRequest> ParsePrepare(const json& j) {
  Members m(j, kMsgPrepare);
  FERRY_ASSIGN_OR_RETURN(std::string migration, m.Required("migration", kMaxMigrationIdChars));
  FERRY_RETURN_IF_ERROR(CheckMigrationId(m, migration));
  FERRY_ASSIGN_OR_RETURN(const json* spec_json, m.Object("spec"));
  if (spec_json->contains("policy") && (*spec_json)["policy"].is_string() &&
      (*spec_json)["policy"].get_ref<const std::string&>().size() > crypto::kMaxPolicyBytes) {
    return m.Bad("has a policy larger than " + std::to_string(crypto::kMaxPolicyBytes) + " bytes");
  }
  auto spec = vm::VmSpec::FromJson(*spec_json);
  if (!spec.ok()) return m.Bad("has a bad \"spec\": " + spec.status().message());
  FERRY_ASSIGN_OR_RETURN(std::string mac_text, m.Required("mac", 64));
  auto mac = MacAddress::Parse(mac_text, "the MAC of vm " + spec->name);
  if (!mac.ok()) return m.Bad(mac.status().message());
  std::optional<Guid> vmgenid;
  FERRY_ASSIGN_OR_RETURN(auto guid, m.String("vmgenid", 64, /*optional=*/true));
  if (guid) {
    auto typed = Guid::Parse(*guid, "the VM generation ID of vm " + spec->name);
    if (!typed.ok()) return m.Bad(typed.status().message());
    vmgenid = *typed;
  }
  FERRY_ASSIGN_OR_RETURN(auto owner, m.String("owner", kOwnerFingerprintChars, true));
  if (owner) {
    const bool hex = owner->size() == kOwnerFingerprintChars &&
                     owner->find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) return m.Bad("has an \"owner\" that is not a key fingerprint (64 hex digits)");
  }
  const bool has_owner = owner && !owner->empty();
  if (has_owner == spec->policy.empty()) {
    return m.Bad(has_owner ? "names an owner but carries no policy"
                           : "carries a policy without the owner the VM was pinned to");
  }
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return PrepareRequest{std::move(migration), std::move(spec).value(), *mac, vmgenid,
                        has_owner ? *owner : std::string()};
}

Result<QueryRequest> ParseQuery(const json& j) {
  Members m(j, kMsgQuery);
  QueryRequest q;
  FERRY_ASSIGN_OR_RETURN(q.migration, m.Required("migration", kMaxMigrationIdChars));
  FERRY_RETURN_IF_ERROR(CheckMigrationId(m, q.migration));
  FERRY_ASSIGN_OR_RETURN(q.vm, m.Required("vm", 64));
  if (Status named = ValidateName("vm", q.vm); !named.ok()) return m.Bad(named.message());
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return q;
}

Result<StateReply> ParseState(const json& j) {
  Members m(j, kMsgState);
  FERRY_ASSIGN_OR_RETURN(std::string state, m.Required("state", 16));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  for (SettledState s : {SettledState::kRunning, SettledState::kAbsent, SettledState::kUnsettled}) {
    if (state == SettledStateName(s)) return StateReply{s};
  }
  return m.Bad("has an unknown \"state\"");
}

// "failed" and "abort": a reason only.
template <typename T>
Result<T> ParseReason(const json& j, const char* type) {
  Members m(j, type);
  T message;
  FERRY_ASSIGN_OR_RETURN(message.error, m.Required("error", kMaxErrorChars));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return message;
}

// "prepared", "received", "finish", "finished": the type says it all.
template <typename T>
Result<T> ParseBare(const json& j, const char* type) {
  FERRY_RETURN_IF_ERROR(Members(j, type).NoOthers());
  return T{};
}

template <typename T>
Result<PeerMessage> AsMessage(Result<T> parsed) {
  if (!parsed.ok()) return parsed.status();
  return PeerMessage(std::move(parsed).value());
}

std::string Cut(const std::string& text) {
  return text.size() <= kMaxErrorChars ? text : text.substr(0, kMaxErrorChars - 3) + "...";
}

}  // namespace

std::string_view SettledStateName(SettledState state) {
  switch (state) {
    case SettledState::kRunning:
      return "running";
    case SettledState::kAbsent:
      return "absent";
    case SettledState::kUnsettled:
      return "unsettled";
  }
  return "unsettled";
}

Result<PeerMessage> ParsePeerMessage(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) {
    return Status::InvalidArgument("peer message of " + std::to_string(bytes.size()) +
                                   " bytes is larger than " + std::to_string(kMaxMessageBytes));
  }
  if (Status depth = CheckJsonDepth(bytes, kMaxMessageDepth); !depth.ok()) {
    return Status::InvalidArgument("peer message: " + depth.message());
  }
  json message = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) {
    return Status::InvalidArgument("peer message of " + std::to_string(bytes.size()) +
                                   " bytes is not a JSON object");
  }
  return ParsePeerObject(message);
}

Result<PeerMessage> ParsePeerObject(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("peer message is not a JSON object");
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) {
    return Status::InvalidArgument("peer message has no \"type\" string");
  }
  const std::string& type = type_it->get_ref<const std::string&>();
  if (type == kMsgPrepare) return AsMessage(ParsePrepare(j));
  if (type == kMsgPrepared) return AsMessage(ParseBare<PreparedReply>(j, kMsgPrepared));
  if (type == kMsgReceived) return AsMessage(ParseBare<ReceivedReply>(j, kMsgReceived));
  if (type == kMsgFinish) return AsMessage(ParseBare<FinishRequest>(j, kMsgFinish));
  if (type == kMsgFinished) return AsMessage(ParseBare<FinishedReply>(j, kMsgFinished));
  if (type == kMsgFailed) return AsMessage(ParseReason<FailedReply>(j, kMsgFailed));
  if (type == kMsgAbort) return AsMessage(ParseReason<AbortRequest>(j, kMsgAbort));
  if (type == kMsgQuery) return AsMessage(ParseQuery(j));
  if (type == kMsgState) return AsMessage(ParseState(j));
  std::string shown = type.substr(0, 32);
  for (char& c : shown) {
    if (c < ' ' || c > '~') c = '?';
  }
  return Status::InvalidArgument("peer message has an unknown type \"" + shown + "\"");
}

const char* MessageType(const PeerMessage& message) {
  static constexpr const char* kTypes[] = {kMsgPrepare, kMsgPrepared, kMsgReceived,
                                           kMsgFinish,  kMsgFinished, kMsgFailed,
                                           kMsgAbort,   kMsgQuery,    kMsgState};
  static_assert(std::size(kTypes) == std::variant_size_v<PeerMessage>);
  return kTypes[message.index()];
}

json MessageJson(const PeerMessage& message) {
  json j = {{"type", MessageType(message)}};
  if (auto* p = std::get_if<PrepareRequest>(&message)) {
    j["migration"] = p->migration;
    j["spec"] = p->spec.ToJson();
    j["mac"] = p->mac.ToString();
    if (p->vmgenid) j["vmgenid"] = p->vmgenid->ToString();
    if (!p->owner.empty()) j["owner"] = p->owner;
  } else if (auto* f = std::get_if<FailedReply>(&message)) {
    j["error"] = Cut(f->error);
  } else if (auto* a = std::get_if<AbortRequest>(&message)) {
    j["error"] = Cut(a->error);
  } else if (auto* q = std::get_if<QueryRequest>(&message)) {
    j["migration"] = q->migration;
    j["vm"] = q->vm;
  } else if (auto* s = std::get_if<StateReply>(&message)) {
    j["state"] = SettledStateName(s->state);
  }
  return j;
}

FailedReply FailedBecause(const std::string& error) { return {Cut(error)}; }
AbortRequest AbortBecause(const std::string& error) { return {Cut(error)}; }

Status SendPeerMessage(PeerLink& link, const PeerMessage& message) {
  return link.SendMessage(MessageJson(message));
}

Result<PeerMessage> ReceivePeerMessage(PeerLink& link, std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(Frame frame, link.Receive(timeout));
  if (frame.type != FrameType::kControl) {
    link.Close();
    return Status::Corruption(link.description() + ": expected a control message, got a " +
                              FrameTypeName(frame.type) + " frame; protocol out of step");
  }
  return ParsePeerMessage(frame.payload);
}

}  // namespace ferry::migrate
