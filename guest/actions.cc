#include "guest/actions.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "guest/encoding.h"
#include "guest/identity_request.h"
#include "guest/protocol.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

// Parts of the request echoed back in an error are cut, so an error reply stays small.
constexpr std::size_t kMaxEchoedChars = 160;

std::string Shorten(std::string s) {
  if (s.size() > kMaxEchoedChars) s = s.substr(0, kMaxEchoedChars) + "...";
  return s;
}

// Hostnames and file contents come from the guest and may hold any bytes; replacing invalid
// UTF-8 keeps dump() from throwing and the reply valid JSON.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string ErrorReply(const json& id, const std::string& message) {
  return Dump(json{{"id", id}, {"ok", false}, {"error", message}});
}

bool LooksLikeMac(const std::string& s) { return s.size() == 17 && s != "00:00:00:00:00:00"; }

constexpr std::size_t kMaxUrandomBytes = 64;
constexpr const char* kKnownOps =
    "ping, identity, reset_identity, finish_identity, urandom, ballast, announce, shutdown";

// Who the guest is now: the "identity" reply, also returned by reset_identity and
// finish_identity.
json IdentityJson(GuestSystem& system, DropbearHostKeys& host_keys) {
  json macs = json::array();
  for (const std::string& iface : system.ListDir("/sys/class/net")) {
    if (iface == "lo") continue;
    auto address = system.ReadFile("/sys/class/net/" + iface + "/address");
    if (!address) continue;
    std::string mac = TrimWhitespace(*address);
    if (LooksLikeMac(mac)) {
      macs.push_back(json{{"iface", iface},
                          {"mac", mac},
                          {"ipv4", system.Ipv4Addresses(iface)},
                          {"ipv6_link_local", system.Ipv6LinkLocal(iface)}});
    }
  }
  json keys = json::array();
  for (const SshHostKey& key : host_keys.List()) {
    keys.push_back(json{{"type", key.type}, {"fingerprint", key.fingerprint}});
  }
  auto machine_id = system.ReadFile("/etc/machine-id");
  auto boot_id = system.ReadFile("/proc/sys/kernel/random/boot_id");
  return json{{"hostname", system.Hostname()},
              {"machine_id", machine_id ? TrimWhitespace(*machine_id) : ""},
              {"boot_id", boot_id ? TrimWhitespace(*boot_id) : ""},
              {"macs", macs},
              {"kernel", system.KernelRelease()},
              {"ssh_host_keys", keys},
              {"clock_unix_ns", system.RealtimeNs()}};
}

// Milliseconds to 0.01 ms: the fast steps take well under one.
json StepTimes(const std::vector<std::pair<std::string, double>>& steps_ms) {
  json times = json::object();
  for (const auto& [step, ms] : steps_ms) times[step] = std::round(ms * 100) / 100;
  return times;
}

// The identity ops set the clock, hostname and more of the machine they run on: only inside a
// guest.
std::string NotInitRefusal(const json& id, const std::string& op) {
  return ErrorReply(id, op + " refused: ferry-guest is not PID 1, so this is not a guest whose "
                             "identity it may change");
}

}  // namespace

ActionReply GuestActions::HandleLine(std::string_view line) {
  json request;
  try {
    request = json::parse(line);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    return {ErrorReply(nullptr, "request is not valid JSON: " + Shorten(e.what())), false};
  }
  if (!request.is_object()) {
    return {ErrorReply(nullptr, "request must be a JSON object like {\"id\":1,\"op\":\"ping\"}"),
            false};
  }
  auto id_it = request.find("id");
  if (id_it == request.end() || !id_it->is_number_unsigned()) {
    return {ErrorReply(nullptr, "request needs an \"id\" that is an unsigned integer"), false};
  }
  json id = *id_it;
  auto op_it = request.find("op");
  if (op_it == request.end() || !op_it->is_string()) {
    return {ErrorReply(id, std::string("request needs an \"op\" string (") + kKnownOps + ")"),
            false};
  }
  const std::string& op = op_it->get_ref<const std::string&>();

  // Nothing below should throw, but a guest agent that dies takes the VM's init with it.
  try {
    if (op == ops::kPing) {
      return {Dump(json{{"id", id},
                        {"ok", true},
                        {"proto", kProtoVersion},
                        {"ready", readiness_.ready()},
                        {"uptime_ms", UptimeMs()}}),
              false};
    }
    if (op == ops::kIdentity) {
      json reply = IdentityJson(system_, host_keys_);
      reply["id"] = id;
      reply["ok"] = true;
      return {Dump(reply), false};
    }
    if (op == ops::kResetIdentity) return {ResetIdentity(id, request), false};
    if (op == ops::kFinishIdentity) return {FinishIdentity(id, request), false};
    if (op == ops::kUrandom) {
      auto n = request.find("bytes");
      if (n == request.end() || !n->is_number_unsigned() || n->get<uint64_t>() < 1 ||
          n->get<uint64_t>() > kMaxUrandomBytes) {
        return {ErrorReply(id, "urandom needs \"bytes\": an integer from 1 to " +
                                   std::to_string(kMaxUrandomBytes)),
                false};
      }
      auto bytes = system_.ReadUrandom(n->get<std::size_t>());
      if (!bytes) return {ErrorReply(id, "urandom: cannot read /dev/urandom in the guest"), false};
      return {Dump(json{{"id", id}, {"ok", true}, {"hex", HexEncode(*bytes)}}), false};
    }
    if (op == ops::kBallast) return {HoldBallast(id, request), false};
    if (op == ops::kAnnounce) return Announce(id, request);
    if (op == ops::kShutdown) {
      if (!system_.IsInit()) {
        return {ErrorReply(id,
                           "shutdown refused: ferry-guest is not PID 1, so this is not a "
                           "guest it may power off"),
                false};
      }
      return {Dump(json{{"id", id}, {"ok", true}}), true};
    }
  } catch (const std::exception& e) {
    return {
        ErrorReply(id, "op '" + Shorten(op) + "' failed inside the guest: " + Shorten(e.what())),
        false};
  }
  return {ErrorReply(id, "unknown op '" + Shorten(op) + "'; known ops: " + kKnownOps), false};
}

std::string GuestActions::HoldBallast(const json& id, const json& request) {
  auto n = request.find("mib");
  if (n == request.end() || !n->is_number_unsigned() || n->get<uint64_t>() > Ballast::kMaxMiB) {
    return ErrorReply(id, "ballast needs \"mib\": an integer from 0 to " +
                              std::to_string(Ballast::kMaxMiB));
  }
  // What the guest can spare: the kernel's estimate, less a reserve for everything else.
  constexpr uint64_t kReserveMiB = 64;
  const uint64_t available = MemAvailableMiB(system_.ReadFile("/proc/meminfo").value_or(""));
  const uint64_t spare = available > kReserveMiB ? available - kReserveMiB : 0;
  auto seed = system_.ReadUrandom(sizeof(uint64_t));
  uint64_t seed_word = 0;
  if (seed) std::memcpy(&seed_word, seed->data(), sizeof seed_word);
  const auto start = std::chrono::steady_clock::now();
  const std::string error = ballast_.Resize(n->get<uint64_t>(), spare, seed_word);
  if (!error.empty()) return ErrorReply(id, error);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return Dump(json{{"id", id}, {"ok", true}, {"mib", ballast_.mib()}, {"fill_ms", ms}});
}

ActionReply GuestActions::Announce(const json& id, const json& request) {
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (it.key() != "id" && it.key() != "op") {
      return {
          ErrorReply(id, "announce takes no arguments; \"" + Shorten(it.key()) + "\" is not one"),
          false};
    }
  }
  // One round is the announcement ferryd waits for before it reports the clone running; the
  // repeats, kAnnounceGap apart, are for a frame the segment lost, and need not hold it up.
  auto announced = AnnounceAddresses(system_, 1);
  if (auto* error = std::get_if<std::string>(&announced)) {
    return {ErrorReply(id, "announce: " + *error), false};
  }
  ActionReply reply{Dump(json{{"id", id},
                              {"ok", true},
                              {"announced", std::get<std::vector<std::string>>(announced)},
                              {"rounds", kAnnounceRounds},
                              {"rounds_before_reply", 1}}),
                    false};
  reply.after_reply = [&system = system_]() -> std::string {
    std::this_thread::sleep_for(kAnnounceGap);
    auto again = AnnounceAddresses(system, kAnnounceRounds - 1);
    auto* error = std::get_if<std::string>(&again);
    return error ? "announce, repeated: " + *error : "";
  };
  return reply;
}

std::string GuestActions::ResetIdentity(const json& id, const json& request) {
  if (!system_.IsInit()) return NotInitRefusal(id, "reset_identity");
  auto parsed = ParseCloneIdentity(request);
  if (auto* error = std::get_if<std::string>(&parsed)) return ErrorReply(id, *error);
  auto start = std::chrono::steady_clock::now();
  return IdentityStepsReply(id, identity_reset_.Run(std::get<CloneIdentity>(parsed)), start);
}

std::string GuestActions::FinishIdentity(const json& id, const json& request) {
  if (!system_.IsInit()) return NotInitRefusal(id, "finish_identity");
  auto parsed = ParseCloneIdentityFinish(request);
  if (auto* error = std::get_if<std::string>(&parsed)) return ErrorReply(id, *error);
  auto start = std::chrono::steady_clock::now();
  return IdentityStepsReply(id, identity_reset_.Finish(std::get<CloneIdentityFinish>(parsed)),
                            start);
}

std::string GuestActions::IdentityStepsReply(const json& id, const IdentityResetResult& result,
                                             std::chrono::steady_clock::time_point start) {
  if (result.failed_step) {
    return Dump(json{{"id", id},
                     {"ok", false},
                     {"error", result.error},
                     {"failed_step", *result.failed_step},
                     {"steps_ms", StepTimes(result.steps_ms)}});
  }
  json reply = {{"id", id},
                {"ok", true},
                {"identity", IdentityJson(system_, host_keys_)},
                {"steps_ms", StepTimes(result.steps_ms)}};
  double total_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  reply["total_ms"] = std::round(total_ms * 100) / 100;
  return Dump(reply);
}

std::string GuestActions::OverlongLineReply() {
  return ErrorReply(nullptr, "request line longer than " + std::to_string(kMaxLineBytes) +
                                 " bytes was discarded");
}

std::string GuestActions::ReadyEvent() {
  return Dump(json{{"event", events::kReady},
                   {"proto", kProtoVersion},
                   {"services", readiness_.ServiceNames()},
                   {"boot_ms", UptimeMs()}});
}

long long GuestActions::UptimeMs() {
  auto text = system_.ReadFile("/proc/uptime");
  if (!text) return -1;
  return ParseUptimeMs(*text).value_or(-1);
}

}  // namespace ferry::guest
