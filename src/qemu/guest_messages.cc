#include "qemu/guest_messages.h"

#include <limits>

#include "core/json_fields.h"
#include "core/json_lines.h"
#include "core/untrusted_json.h"

namespace ferry::qemu {

using nlohmann::json;

namespace {

// A guest's error text is quoted in ferryd's errors and logs: cut it short.
constexpr size_t kMaxGuestErrorBytes = 500;

Result<JsonFields> Reply(std::string_view op, const json& reply) {
  return JsonFields::Of(reply, "guest " + std::string(op) + " reply");
}

Result<int> Proto(const JsonFields& f) {
  FERRY_ASSIGN_OR_RETURN(int64_t proto, f.Int("proto"));
  if (proto < 0 || proto > std::numeric_limits<int>::max()) {
    return f.Error("proto", "is out of range: " + std::to_string(proto));
  }
  return static_cast<int>(proto);
}

Result<GuestIdentity> IdentityFrom(const JsonFields& f) {
  GuestIdentity id;
  FERRY_ASSIGN_OR_RETURN(id.hostname, f.String("hostname"));
  FERRY_ASSIGN_OR_RETURN(id.machine_id, f.String("machine_id", ""));
  FERRY_ASSIGN_OR_RETURN(id.boot_id, f.String("boot_id", ""));
  FERRY_ASSIGN_OR_RETURN(id.kernel, f.String("kernel", ""));
  FERRY_ASSIGN_OR_RETURN(id.clock_unix_ns, f.Int("clock_unix_ns", 0));
  if (f.Has("macs")) {
    FERRY_ASSIGN_OR_RETURN(auto macs, f.Objects("macs"));
    for (const JsonFields& m : macs) {
      GuestInterface nic;
      FERRY_ASSIGN_OR_RETURN(nic.iface, m.String("iface"));
      FERRY_ASSIGN_OR_RETURN(nic.mac, m.String("mac"));
      if (m.Has("ipv4")) {
        FERRY_ASSIGN_OR_RETURN(nic.ipv4, m.Strings("ipv4"));
      }
      if (m.Has("ipv6_link_local")) {
        FERRY_ASSIGN_OR_RETURN(nic.ipv6_link_local, m.Strings("ipv6_link_local"));
      }
      id.macs.push_back(std::move(nic));
    }
  }
  if (f.Has("ssh_host_keys")) {
    FERRY_ASSIGN_OR_RETURN(auto keys, f.Objects("ssh_host_keys"));
    for (const JsonFields& k : keys) {
      GuestSshKey key;
      FERRY_ASSIGN_OR_RETURN(key.type, k.String("type"));
      FERRY_ASSIGN_OR_RETURN(key.fingerprint, k.String("fingerprint"));
      id.ssh_host_keys.push_back(std::move(key));
    }
  }
  return id;
}

// A reply line's object without "id" and "ok", or the error the guest sent.
Result<json> ReplyBody(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(GuestLine parsed, ParseGuestLine(line));
  if (parsed.kind != GuestLine::Kind::kReply) {
    return Status::Corruption("guest line is an event, not a reply");
  }
  if (!parsed.ok) return Status::FailedPrecondition("guest: " + parsed.error);
  return std::move(parsed.body);
}

}  // namespace

json GuestIdentity::ToJson() const {
  json nics = json::array();
  for (const auto& nic : macs) {
    nics.push_back({{"iface", nic.iface},
                    {"mac", nic.mac},
                    {"ipv4", nic.ipv4},
                    {"ipv6_link_local", nic.ipv6_link_local}});
  }
  json keys = json::array();
  for (const auto& key : ssh_host_keys) {
    keys.push_back({{"type", key.type}, {"fingerprint", key.fingerprint}});
  }
  return {{"hostname", hostname},
          {"machine_id", machine_id},
          {"boot_id", boot_id},
          {"macs", nics},
          {"kernel", kernel},
          {"ssh_host_keys", keys},
          {"clock_unix_ns", clock_unix_ns}};
}

json GuestIdentityChange::StepsJson() const {
  json steps = json::object();
  for (const auto& [step, ms] : steps_ms) steps[step] = ms;
  return steps;
}

Result<GuestPing> ParsePingReply(const json& reply) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(guest::ops::kPing, reply));
  GuestPing ping;
  FERRY_ASSIGN_OR_RETURN(ping.proto, Proto(f));
  FERRY_ASSIGN_OR_RETURN(ping.ready, f.Bool("ready"));
  FERRY_ASSIGN_OR_RETURN(ping.uptime_ms, f.Int("uptime_ms", 0));
  return ping;
}

Result<GuestIdentity> ParseIdentityReply(const json& reply) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(guest::ops::kIdentity, reply));
  return IdentityFrom(f);
}

Result<GuestIdentityChange> ParseIdentityChangeReply(std::string_view op, const json& reply) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(op, reply));
  GuestIdentityChange change;
  FERRY_ASSIGN_OR_RETURN(JsonFields identity, f.Object("identity"));
  FERRY_ASSIGN_OR_RETURN(change.identity, IdentityFrom(identity));
  FERRY_ASSIGN_OR_RETURN(change.total_ms, f.Number("total_ms", 0.0));
  if (f.Has("steps_ms")) {
    FERRY_ASSIGN_OR_RETURN(JsonFields steps, f.Object("steps_ms"));
    for (const auto& [step, ms] : steps.raw().items()) {
      FERRY_ASSIGN_OR_RETURN(change.steps_ms[step], steps.Number(step));
    }
  }
  return change;
}

Result<GuestRandom> ParseRandomReply(const json& reply, size_t bytes) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(guest::ops::kUrandom, reply));
  GuestRandom random;
  FERRY_ASSIGN_OR_RETURN(random.hex, f.String("hex"));
  if (random.hex.size() != 2 * bytes ||
      random.hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return f.Error("hex", "must be " + std::to_string(2 * bytes) + " lowercase hex digits");
  }
  return random;
}

Result<GuestBallast> ParseBallastReply(const json& reply, uint64_t mib) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(guest::ops::kBallast, reply));
  GuestBallast ballast;
  FERRY_ASSIGN_OR_RETURN(ballast.mib, f.Uint("mib"));
  FERRY_ASSIGN_OR_RETURN(ballast.fill_ms, f.Int("fill_ms"));
  if (ballast.mib != mib) return f.Error("mib", "must be the " + std::to_string(mib) + " asked");
  return ballast;
}

Result<std::vector<std::string>> ParseAnnounceReply(const json& reply) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply(guest::ops::kAnnounce, reply));
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> announced, f.Strings("announced"));
  if (announced.empty() || announced.size() > kMaxAnnouncedAddresses) {
    return f.Error("announced", "must name 1 to " + std::to_string(kMaxAnnouncedAddresses) +
                                    " addresses");
  }
  for (const std::string& a : announced) {
    // A dotted quad: at most 15 characters of digits and dots.
    if (a.empty() || a.size() > 15 || a.find_first_not_of("0123456789.") != std::string::npos) {
      return f.Error("announced", "must hold IPv4 addresses");
    }
  }
  return announced;
}

Status ParseShutdownReply(const json& reply) {
  return Reply(guest::ops::kShutdown, reply).status();
}

Result<GuestReadyEvent> ParseReadyEvent(const json& event) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(event, "guest ready event"));
  GuestReadyEvent ready;
  FERRY_ASSIGN_OR_RETURN(ready.proto, Proto(f));
  if (f.Has("services")) {
    FERRY_ASSIGN_OR_RETURN(ready.services, f.Strings("services"));
  }
  FERRY_ASSIGN_OR_RETURN(ready.boot_ms, f.Int("boot_ms", 0));
  return ready;
}

Result<GuestLine> ClassifyGuestMessage(json message) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(message, "guest message"));
  GuestLine out;
  if (f.Has("id")) {
    out.kind = GuestLine::Kind::kReply;
    FERRY_ASSIGN_OR_RETURN(out.id, f.Uint("id"));
    FERRY_ASSIGN_OR_RETURN(out.ok, f.Bool("ok"));
    if (!out.ok) {
      // The call failed either way; a malformed error text only loses the guest's reason.
      auto error = f.String("error", "");
      out.error = error.ok() && !error->empty() ? PrintableExcerpt(*error, kMaxGuestErrorBytes)
                                                : "failed without saying why";
    }
    message.erase("id");
    message.erase("ok");
    out.body = std::move(message);
    return out;
  }
  out.kind = GuestLine::Kind::kEvent;
  FERRY_ASSIGN_OR_RETURN(out.event, f.String("event"));
  if (out.event == guest::events::kReady) {
    FERRY_RETURN_IF_ERROR(ParseReadyEvent(message).status());
  }
  out.body = std::move(message);
  return out;
}

Result<GuestLine> ParseGuestLine(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(json message, ParseJsonLine(line));
  return ClassifyGuestMessage(std::move(message));
}

Result<GuestPing> ParsePingReplyLine(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(json body, ReplyBody(line));
  return ParsePingReply(body);
}

Result<GuestIdentity> ParseIdentityReplyLine(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(json body, ReplyBody(line));
  return ParseIdentityReply(body);
}

Result<GuestIdentityChange> ParseIdentityChangeReplyLine(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(json body, ReplyBody(line));
  return ParseIdentityChangeReply(guest::ops::kResetIdentity, body);
}

}  // namespace ferry::qemu
