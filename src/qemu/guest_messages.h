// The guest's replies and events as types: the one place ferryd reads what ferry-guest sends
// (guest/protocol.h describes every op). Each parser takes a reply as GuestChannel::Call returns
// it (the object without "id" and "ok") and checks every member it reads; a member of the wrong
// type or a missing one fails that call only, with an error naming the op and the member, e.g.
// `guest ping reply: member "ready" must be a boolean, not string`. Callers add the VM's name.
//
// Everything here is untrusted data about the guest: strings may hold control characters and
// escape sequences (the CLI escapes them when it prints). Parsers that take bytes
// (ParseGuestLine and the *Line forms) are the fuzzing entry points.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "guest/protocol.h"

namespace ferry::qemu {

// ping
struct GuestPing {
  int proto = 0;
  bool ready = false;
  int64_t uptime_ms = 0;
};

struct GuestInterface {
  std::string iface;
  std::string mac;
  std::vector<std::string> ipv4;
  std::vector<std::string> ipv6_link_local;  // absent before ferry-guest reported it: empty
};

struct GuestSshKey {
  std::string type;
  std::string fingerprint;
};

// identity, and the "identity" member of reset_identity / finish_identity replies.
struct GuestIdentity {
  std::string hostname;
  std::string machine_id;
  std::string boot_id;
  std::vector<GuestInterface> macs;
  std::string kernel;
  std::vector<GuestSshKey> ssh_host_keys;  // absent before proto 2: empty
  int64_t clock_unix_ns = 0;               // absent before proto 2: 0

  // Back into the protocol's shape, for API replies.
  nlohmann::json ToJson() const;
};

// reset_identity and finish_identity.
struct GuestIdentityChange {
  GuestIdentity identity;
  std::map<std::string, double> steps_ms;  // step name -> milliseconds, as the guest timed them
  double total_ms = 0;

  nlohmann::json StepsJson() const;
};

// urandom: the bytes as lowercase hex, checked to be hex of the asked length.
struct GuestRandom {
  std::string hex;
};

// ballast: the MiB of random bytes the guest now holds, and how long filling them took.
struct GuestBallast {
  uint64_t mib = 0;
  int64_t fill_ms = 0;
};

// The unsolicited "ready" event.
struct GuestReadyEvent {
  int proto = 0;
  std::vector<std::string> services;
  int64_t boot_ms = 0;
};

Result<GuestPing> ParsePingReply(const nlohmann::json& reply);
Result<GuestIdentity> ParseIdentityReply(const nlohmann::json& reply);
// For "reset_identity" or "finish_identity" (`op` names it in errors).
Result<GuestIdentityChange> ParseIdentityChangeReply(std::string_view op,
                                                     const nlohmann::json& reply);
Result<GuestRandom> ParseRandomReply(const nlohmann::json& reply, size_t bytes);
// For a ballast of `mib`: the guest must say it holds exactly that.
Result<GuestBallast> ParseBallastReply(const nlohmann::json& reply, uint64_t mib);
// shutdown answers {}: any object is accepted.
Status ParseShutdownReply(const nlohmann::json& reply);
// announce: the addresses the guest announced (dotted quads, 1 to kMaxAnnouncedAddresses).
inline constexpr size_t kMaxAnnouncedAddresses = 64;
Result<std::vector<std::string>> ParseAnnounceReply(const nlohmann::json& reply);
Result<GuestReadyEvent> ParseReadyEvent(const nlohmann::json& event);

// One line from the guest, as GuestChannel routes it.
struct GuestLine {
  enum class Kind { kReply, kEvent };
  Kind kind = Kind::kEvent;
  uint64_t id = 0;      // kReply
  bool ok = false;      // kReply
  std::string error;    // kReply with ok false: the guest's text, escaped and cut short
  std::string event;    // kEvent: its name
  nlohmann::json body;  // kReply: the object without "id" and "ok"; kEvent: the whole object
};

// Frames one line (size, depth, syntax), then tells a reply from an event. A reply's "ok" must be
// a boolean; an event's "event" a string; a ready event must parse. Bytes in, for fuzzing.
Result<GuestLine> ParseGuestLine(std::string_view line);
// The same checks on an already parsed object.
Result<GuestLine> ClassifyGuestMessage(nlohmann::json message);

// The reply parsers on a whole reply line (`{"id":N,"ok":true,...}`), for fuzzing.
Result<GuestPing> ParsePingReplyLine(std::string_view line);
Result<GuestIdentity> ParseIdentityReplyLine(std::string_view line);
Result<GuestIdentityChange> ParseIdentityChangeReplyLine(std::string_view line);

}  // namespace ferry::qemu
