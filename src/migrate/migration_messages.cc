#include "migrate/migration_messages.h"

#include <iterator>
#include <set>

#include "core/ids.h"
#include "core/untrusted_json.h"
#include "crypto/aead.h"
#include "crypto/owner_policy.h"
#include "migrate/migration_protocol.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;

// A name the peer sent, cut and with anything but printable ASCII shown as '?', fit for an error.
std::string Shown(const std::string& name) {
  std::string shown = name.substr(0, 32);
  for (char& c : shown) {
    if (c < ' ' || c > '~') c = '?';
  }
  return shown;
}

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
  // An unsigned integer no larger than `max`.
  Result<uint64_t> Unsigned(const char* key, uint64_t max) {
    read_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return Bad(std::string("has no \"") + key + "\"");
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return Bad(std::string("\"") + key + "\" is not a non-negative integer");
    }
    const uint64_t value = it->get<uint64_t>();
    if (value > max) {
      return Bad(std::string("\"") + key + "\" is larger than " + std::to_string(max));
    }
    return value;
  }
  // `bytes` raw bytes written as 2*bytes lower-case hex digits.
  Result<std::optional<std::string>> HexBytes(const char* key, size_t bytes, bool optional) {
    FERRY_ASSIGN_OR_RETURN(auto text, String(key, 2 * bytes, optional));
    if (!text) return text;
    if (text->size() != 2 * bytes ||
        text->find_first_not_of("0123456789abcdef") != std::string::npos) {
      crypto::Wipe(*text);
      return Bad(std::string("\"") + key + "\" is not " + std::to_string(bytes) +
                 " bytes in lower-case hex");
    }
    std::string raw(bytes, '\0');
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (size_t i = 0; i < bytes; ++i) {
      raw[i] = static_cast<char>(nibble((*text)[2 * i]) << 4 | nibble((*text)[2 * i + 1]));
    }
    crypto::Wipe(*text);
    return std::optional<std::string>(std::move(raw));
  }
  // The migration's id: what the peers name it by, so only [a-z0-9-].
  Result<std::string> MigrationId() {
    FERRY_ASSIGN_OR_RETURN(std::string id, Required("migration", kMaxMigrationIdChars));
    if (id.empty()) return Bad("has an empty \"migration\"");
    for (char c : id) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return Bad("has a \"migration\" id with a character not in [a-z0-9-]");
      }
    }
    return id;
  }
  // A vm or snapshot name (`key` is its kind), valid as ValidateName says.
  Result<std::optional<std::string>> Name(const char* key, bool optional) {
    FERRY_ASSIGN_OR_RETURN(auto name, String(key, 64, optional));
    if (name) {
      if (Status named = ValidateName(key, *name); !named.ok()) return Bad(named.message());
    }
    return name;
  }
  // The owner's key fingerprint; absent, or empty where `empty_is_none`, is no owner.
  Result<std::optional<std::string>> Owner(bool empty_is_none) {
    FERRY_ASSIGN_OR_RETURN(auto owner, String("owner", kOwnerFingerprintChars, true));
    if (!owner || (empty_is_none && owner->empty())) return std::optional<std::string>();
    const bool hex = owner->size() == kOwnerFingerprintChars &&
                     owner->find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) return Bad("has an \"owner\" that is not a key fingerprint (64 hex digits)");
    return owner;
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
      if (!read_.count(it.key())) return Bad("has an unknown member \"" + Shown(it.key()) + "\"");
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

Result<PrepareRequest> ParsePrepare(const json& j) {
  Members m(j, kMsgPrepare);
  FERRY_ASSIGN_OR_RETURN(std::string migration, m.MigrationId());
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
  FERRY_ASSIGN_OR_RETURN(auto owner, m.Owner(/*empty_is_none=*/false));
  const bool has_owner = owner.has_value();
  if (has_owner == spec->policy.empty()) {
    return m.Bad(has_owner ? "names an owner but carries no policy"
                           : "carries a policy without the owner the VM was pinned to");
  }
  std::optional<uint64_t> disk_bytes;
  if (j.contains("disk_bytes") != (spec->disk_mib != 0)) {
    return m.Bad(spec->disk_mib != 0 ? "has a disk but no \"disk_bytes\""
                                     : "has \"disk_bytes\" but no disk");
  }
  if (spec->disk_mib != 0) {
    // qcow2 metadata on top of a full disk stays far below its size again.
    FERRY_ASSIGN_OR_RETURN(disk_bytes, m.Unsigned("disk_bytes", 2 * (spec->disk_mib << 20)));
  }
  FERRY_ASSIGN_OR_RETURN(auto machine, m.String("machine_type", 64, /*optional=*/true));
  if (machine &&
      (machine->empty() || machine->find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                      "0123456789.-_") != std::string::npos)) {
    return m.Bad("has a \"machine_type\" that is not a QEMU machine type name");
  }
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return PrepareRequest{std::move(migration),
                        std::move(spec).value(),
                        *mac,
                        vmgenid,
                        has_owner ? *owner : std::string(),
                        disk_bytes,
                        machine.value_or("")};
}

Result<PreparedReply> ParsePrepared(const json& j) {
  Members m(j, kMsgPrepared);
  PreparedReply r;
  FERRY_ASSIGN_OR_RETURN(r.disk_token, m.HexBytes("disk_token", kDiskTokenBytes, true));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return r;
}

Result<DiskLinkRequest> ParseDiskLink(const json& j) {
  Members m(j, kMsgDiskLink);
  DiskLinkRequest d;
  FERRY_ASSIGN_OR_RETURN(d.migration, m.MigrationId());
  FERRY_ASSIGN_OR_RETURN(auto token, m.HexBytes("token", kDiskTokenBytes, false));
  d.token = std::move(*token);
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return d;
}

Result<HoldPrepareRequest> ParseHoldPrepare(const json& j) {
  Members m(j, kMsgHoldPrepare);
  HoldPrepareRequest p;
  FERRY_ASSIGN_OR_RETURN(p.migration, m.MigrationId());
  FERRY_ASSIGN_OR_RETURN(auto vm, m.Name("vm", /*optional=*/false));
  p.vm = std::move(*vm);
  FERRY_ASSIGN_OR_RETURN(auto owner, m.Owner(/*empty_is_none=*/true));
  if (owner) p.owner = *owner;
  FERRY_ASSIGN_OR_RETURN(p.manifest_bytes, m.Unsigned("manifest_bytes", kMaxHoldManifestBytes));
  if (p.manifest_bytes == 0) return m.Bad("has an empty manifest");
  FERRY_ASSIGN_OR_RETURN(auto key, m.HexBytes("data_key", kHoldKeyBytes, false));
  p.data_key = std::move(*key);
  crypto::Wipe(*key);
  FERRY_ASSIGN_OR_RETURN(p.owner_secret, m.HexBytes("owner_secret", kHoldKeyBytes, true));
  FERRY_ASSIGN_OR_RETURN(p.snapshot, m.Name("snapshot", /*optional=*/true));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return p;
}

Result<HoldPreparedReply> ParseHoldPrepared(const json& j) {
  Members m(j, kMsgHoldPrepared);
  HoldPreparedReply r;
  FERRY_ASSIGN_OR_RETURN(r.chunks, m.Unsigned("chunks", kMaxHoldChunks));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return r;
}

// "query" and "hold-query": which migration, of which VM.
template <typename T>
Result<T> ParseQueryOf(const json& j, const char* type) {
  Members m(j, type);
  T q;
  FERRY_ASSIGN_OR_RETURN(q.migration, m.MigrationId());
  FERRY_ASSIGN_OR_RETURN(auto vm, m.Name("vm", /*optional=*/false));
  q.vm = std::move(*vm);
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  return q;
}

Result<StateReply> ParseState(const json& j) {
  Members m(j, kMsgState);
  FERRY_ASSIGN_OR_RETURN(std::string state, m.Required("state", 16));
  FERRY_RETURN_IF_ERROR(m.NoOthers());
  for (SettledState s : {SettledState::kRunning, SettledState::kAbsent, SettledState::kUnsettled,
                         SettledState::kHeld}) {
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

// A hold-prepare's keys, wiped from the JSON they were parsed from.
void WipeKeys(json& message) {
  if (!message.is_object()) return;
  for (const char* key : {"data_key", "owner_secret"}) {
    auto it = message.find(key);
    if (it != message.end() && it->is_string()) crypto::Wipe(it->get_ref<std::string&>());
  }
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
    case SettledState::kHeld:
      return "held";
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
  Result<PeerMessage> parsed = ParsePeerObject(message);
  WipeKeys(message);
  return parsed;
}

Result<PeerMessage> ParsePeerObject(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("peer message is not a JSON object");
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) {
    return Status::InvalidArgument("peer message has no \"type\" string");
  }
  const std::string& type = type_it->get_ref<const std::string&>();
  if (type == kMsgPrepare) return AsMessage(ParsePrepare(j));
  if (type == kMsgPrepared) return AsMessage(ParsePrepared(j));
  if (type == kMsgReceived) return AsMessage(ParseBare<ReceivedReply>(j, kMsgReceived));
  if (type == kMsgFinish) return AsMessage(ParseBare<FinishRequest>(j, kMsgFinish));
  if (type == kMsgFinished) return AsMessage(ParseBare<FinishedReply>(j, kMsgFinished));
  if (type == kMsgFailed) return AsMessage(ParseReason<FailedReply>(j, kMsgFailed));
  if (type == kMsgAbort) return AsMessage(ParseReason<AbortRequest>(j, kMsgAbort));
  if (type == kMsgQuery) return AsMessage(ParseQueryOf<QueryRequest>(j, kMsgQuery));
  if (type == kMsgState) return AsMessage(ParseState(j));
  if (type == kMsgHoldPrepare) return AsMessage(ParseHoldPrepare(j));
  if (type == kMsgHoldPrepared) return AsMessage(ParseHoldPrepared(j));
  if (type == kMsgHoldQuery) return AsMessage(ParseQueryOf<HoldQueryRequest>(j, kMsgHoldQuery));
  if (type == kMsgDiskLink) return AsMessage(ParseDiskLink(j));
  if (type == kMsgDiskLinked) return AsMessage(ParseBare<DiskLinkedReply>(j, kMsgDiskLinked));
  if (type == kMsgDiskReady) return AsMessage(ParseBare<DiskReadyRequest>(j, kMsgDiskReady));
  return Status::InvalidArgument("peer message has an unknown type \"" + Shown(type) + "\"");
}

const char* MessageType(const PeerMessage& message) {
  static constexpr const char* kTypes[] = {
      kMsgPrepare,      kMsgPrepared,  kMsgReceived, kMsgFinish,     kMsgFinished,
      kMsgFailed,       kMsgAbort,     kMsgQuery,    kMsgState,      kMsgHoldPrepare,
      kMsgHoldPrepared, kMsgHoldQuery, kMsgDiskLink, kMsgDiskLinked, kMsgDiskReady};
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
    if (p->disk_bytes) j["disk_bytes"] = *p->disk_bytes;
    if (!p->machine_type.empty()) j["machine_type"] = p->machine_type;
  } else if (auto* pr = std::get_if<PreparedReply>(&message)) {
    if (pr->disk_token) j["disk_token"] = HexOf(*pr->disk_token);
  } else if (auto* dl = std::get_if<DiskLinkRequest>(&message)) {
    j["migration"] = dl->migration;
    j["token"] = HexOf(dl->token);
  } else if (auto* f = std::get_if<FailedReply>(&message)) {
    j["error"] = Cut(f->error);
  } else if (auto* a = std::get_if<AbortRequest>(&message)) {
    j["error"] = Cut(a->error);
  } else if (auto* q = std::get_if<QueryRequest>(&message)) {
    j["migration"] = q->migration;
    j["vm"] = q->vm;
  } else if (auto* s = std::get_if<StateReply>(&message)) {
    j["state"] = SettledStateName(s->state);
  } else if (auto* h = std::get_if<HoldPrepareRequest>(&message)) {
    j["migration"] = h->migration;
    j["vm"] = h->vm;
    if (!h->owner.empty()) j["owner"] = h->owner;
    j["manifest_bytes"] = h->manifest_bytes;
    j["data_key"] = HexOf(h->data_key);
    if (h->owner_secret) j["owner_secret"] = HexOf(*h->owner_secret);
    if (h->snapshot) j["snapshot"] = *h->snapshot;
  } else if (auto* hp = std::get_if<HoldPreparedReply>(&message)) {
    j["chunks"] = hp->chunks;
  } else if (auto* hq = std::get_if<HoldQueryRequest>(&message)) {
    j["migration"] = hq->migration;
    j["vm"] = hq->vm;
  }
  return j;
}

HoldPrepareRequest::~HoldPrepareRequest() {
  crypto::Wipe(data_key);
  if (owner_secret) crypto::Wipe(*owner_secret);
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
  Result<PeerMessage> parsed = ParsePeerMessage(frame.payload);
  // A hold-prepare's keys were in these bytes.
  if (parsed.ok() && std::holds_alternative<HoldPrepareRequest>(*parsed)) {
    crypto::Wipe(frame.payload);
  }
  return parsed;
}

}  // namespace ferry::migrate
