#include "guest/actions.h"

#include <exception>
#include <nlohmann/json.hpp>

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

}  // namespace

ActionReply GuestActions::HandleLine(std::string_view line) {
  json request;
  try {
    request = json::parse(line);
  } catch (const json::parse_error& e) {
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
    return {ErrorReply(id, "request needs an \"op\" string (ping, identity, shutdown)"), false};
  }
  const std::string& op = op_it->get_ref<const std::string&>();

  // Nothing below should throw, but a guest agent that dies takes the VM's init with it.
  try {
    if (op == "ping") {
      return {Dump(json{{"id", id},
                        {"ok", true},
                        {"proto", kProtoVersion},
                        {"ready", readiness_.ready()},
                        {"uptime_ms", UptimeMs()}}),
              false};
    }
    if (op == "identity") {
      json macs = json::array();
      for (const std::string& iface : system_.ListDir("/sys/class/net")) {
        if (iface == "lo") continue;
        auto address = system_.ReadFile("/sys/class/net/" + iface + "/address");
        if (!address) continue;
        std::string mac = TrimWhitespace(*address);
        if (LooksLikeMac(mac)) macs.push_back(json{{"iface", iface}, {"mac", mac}});
      }
      auto machine_id = system_.ReadFile("/etc/machine-id");
      auto boot_id = system_.ReadFile("/proc/sys/kernel/random/boot_id");
      return {Dump(json{{"id", id},
                        {"ok", true},
                        {"hostname", system_.Hostname()},
                        {"machine_id", machine_id ? TrimWhitespace(*machine_id) : ""},
                        {"boot_id", boot_id ? TrimWhitespace(*boot_id) : ""},
                        {"macs", macs},
                        {"kernel", system_.KernelRelease()}}),
              false};
    }
    if (op == "shutdown") {
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
  return {ErrorReply(id, "unknown op '" + Shorten(op) + "'; known ops: ping, identity, shutdown"),
          false};
}

std::string GuestActions::OverlongLineReply() {
  return ErrorReply(nullptr, "request line longer than " + std::to_string(kMaxLineBytes) +
                                 " bytes was discarded");
}

std::string GuestActions::ReadyEvent() {
  return Dump(json{{"event", "ready"},
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
