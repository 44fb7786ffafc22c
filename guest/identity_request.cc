#include "guest/identity_request.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>
#include <variant>

#include "guest/dhcp_message.h"
#include "guest/encoding.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxEchoedChars = 80;
constexpr std::string_view kResetOp = "reset_identity";
constexpr std::string_view kFinishOp = "finish_identity";
// What each op takes besides "id" and "op"; anything else is refused.
constexpr std::array<std::string_view, 7> kResetArguments = {
    "hostname", "mac", "machine_id", "entropy", "time_unix_ns", "ssh_host_key", "ipv4"};
constexpr std::array<std::string_view, 4> kFinishArguments = {"hostname", "entropy",
                                                              "time_unix_ns", "ipv4"};

// Why a request is refused. Its own type, so that a checked value that is a string (a hostname)
// and a refusal cannot be mixed up in a variant.
struct Refusal {
  std::string message;
};
template <typename T>
using Checked = std::variant<T, Refusal>;

// Moves a checked value into `field`, or returns the refusal's message.
template <typename T>
std::optional<std::string> Take(Checked<T> checked, T& field) {
  if (auto* refusal = std::get_if<Refusal>(&checked)) return std::move(refusal->message);
  field = std::move(std::get<T>(checked));
  return std::nullopt;
}

// A value from the request quoted in an error, shortened and as JSON so odd bytes stay visible.
std::string Quote(const json& value) {
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > kMaxEchoedChars) text = text.substr(0, kMaxEchoedChars) + "...";
  return text;
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsHex(char c) { return IsLowerHex(c) || (c >= 'A' && c <= 'F'); }

// Unknown members are refused rather than ignored, so that a misspelt optional argument does not
// pass silently and an op is never taken to change something it does not.
template <std::size_t N>
std::optional<std::string> RefuseUnknownMembers(const json& request, std::string_view op,
                                                const std::array<std::string_view, N>& known) {
  for (const auto& [key, unused] : request.items()) {
    if (key == "id" || key == "op") continue;
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string takes;
    for (std::size_t i = 0; i < N; ++i) {
      takes += (i == 0 ? "" : i + 1 == N ? " and " : ", ") + std::string(known[i]);
    }
    return std::string(op) + ": unknown argument " + Quote(key) + "; it takes " + takes;
  }
  return std::nullopt;
}

Checked<const std::string*> StringMember(const json& request, std::string_view op,
                                         const char* name) {
  auto it = request.find(name);
  if (it == request.end()) return Refusal{std::string(op) + " needs \"" + name + "\""};
  if (!it->is_string()) {
    return Refusal{std::string(op) + ": \"" + name + "\" must be a string, got " + Quote(*it)};
  }
  return &it->get_ref<const std::string&>();
}

// The validators of the members both ops take, each naming `op` in its refusal.

Checked<std::string> CheckHostname(const json& request, std::string_view op) {
  auto member = StringMember(request, op, "hostname");
  if (auto* refusal = std::get_if<Refusal>(&member)) return *refusal;
  const std::string& hostname = *std::get<const std::string*>(member);
  if (!ValidHostnameLabel(hostname)) {
    return Refusal{std::string(op) +
                   ": \"hostname\" must be 1 to 63 letters, digits and '-', not starting or "
                   "ending with '-' (an RFC 1123 label), got " +
                   Quote(hostname)};
  }
  return hostname;
}

// Never quotes the entropy: it seeds the clone's RNG, and error replies end up in logs.
Checked<std::string> CheckEntropy(const json& request, std::string_view op) {
  auto member = StringMember(request, op, "entropy");
  if (auto* refusal = std::get_if<Refusal>(&member)) return *refusal;
  const std::string& text = *std::get<const std::string*>(member);
  const std::string prefix = std::string(op) + ": \"entropy\" ";
  auto bytes = DecodeEntropy(text);
  if (!bytes) {
    return Refusal{prefix + "must be hex or padded standard base64 (" +
                   std::to_string(text.size()) + " characters that are neither were sent)"};
  }
  if (bytes->size() < kMinEntropyBytes || bytes->size() > kMaxEntropyBytes) {
    return Refusal{prefix + "must decode to " + std::to_string(kMinEntropyBytes) + " to " +
                   std::to_string(kMaxEntropyBytes) + " bytes from the host's CSPRNG, got " +
                   std::to_string(bytes->size())};
  }
  // A zeroed or constant buffer is a host bug; crediting it as entropy would be a lie.
  if (std::all_of(bytes->begin(), bytes->end(), [&](char b) { return b == bytes->front(); })) {
    return Refusal{prefix + "is " + std::to_string(bytes->size()) +
                   " copies of one byte value, which is not random; send bytes from the host's "
                   "CSPRNG"};
  }
  return std::move(*bytes);
}

Checked<int64_t> CheckTime(const json& request, std::string_view op) {
  auto it = request.find("time_unix_ns");
  if (it == request.end()) return Refusal{std::string(op) + " needs \"time_unix_ns\""};
  if (!it->is_number_integer()) {
    return Refusal{std::string(op) +
                   ": \"time_unix_ns\" must be an integer (nanoseconds since the Unix epoch), "
                   "got " +
                   Quote(*it)};
  }
  // is_number_integer includes unsigned values past int64; those are out of range anyway.
  bool in_range = it->is_number_unsigned()
                      ? it->get<uint64_t>() < static_cast<uint64_t>(kMaxTimeUnixNs) &&
                            it->get<uint64_t>() >= static_cast<uint64_t>(kMinTimeUnixNs)
                      : it->get<int64_t>() >= kMinTimeUnixNs && it->get<int64_t>() < kMaxTimeUnixNs;
  if (!in_range) {
    return Refusal{std::string(op) +
                   ": \"time_unix_ns\" must be nanoseconds since the Unix epoch between "
                   "2020-01-01 and 2100-01-01, got " +
                   Quote(*it)};
  }
  return it->get<int64_t>();
}

// The members only reset_identity takes.

Checked<MacAddress> CheckMac(const json& request) {
  auto member = StringMember(request, kResetOp, "mac");
  if (auto* refusal = std::get_if<Refusal>(&member)) return *refusal;
  const std::string& text = *std::get<const std::string*>(member);
  auto mac = ParseUnicastMac(text);
  if (!mac) {
    return Refusal{
        "reset_identity: \"mac\" must be a unicast MAC address like "
        "\"52:54:00:12:34:56\" (six hex octets, first octet even, not all zero), got " +
        Quote(text)};
  }
  return *mac;
}

Checked<std::string> CheckMachineId(const json& request) {
  auto member = StringMember(request, kResetOp, "machine_id");
  if (auto* refusal = std::get_if<Refusal>(&member)) return *refusal;
  const std::string& id = *std::get<const std::string*>(member);
  if (!ValidMachineId(id)) {
    return Refusal{
        "reset_identity: \"machine_id\" must be 32 lowercase hex digits, not all zero, got " +
        Quote(id)};
  }
  return id;
}

Checked<std::string> CheckSshHostKey(const json& request) {
  auto member = StringMember(request, kResetOp, "ssh_host_key");
  if (auto* refusal = std::get_if<Refusal>(&member)) return *refusal;
  const std::string& key = *std::get<const std::string*>(member);
  bool hex = !key.empty() && std::all_of(key.begin(), key.end(), IsHex);
  std::optional<std::string> raw = hex ? HexDecode(key) : std::nullopt;
  if (!raw || raw->size() != kEd25519KeyPairBytes) {
    return Refusal{"reset_identity: \"ssh_host_key\" must be " +
                   std::to_string(kEd25519KeyPairBytes * 2) +
                   " hex digits (an ed25519 seed then its public key); got " +
                   std::to_string(key.size()) + " characters"};
  }
  if (std::all_of(raw->begin(), raw->end(), [&](char b) { return b == raw->front(); })) {
    return Refusal{
        "reset_identity: \"ssh_host_key\" is one byte value repeated, which is not "
        "a key; make it from the host's CSPRNG"};
  }
  return std::move(*raw);
}

}  // namespace

bool ValidHostnameLabel(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostnameChars) return false;
  if (name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::optional<MacAddress> ParseUnicastMac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddress mac{};
  for (std::size_t i = 0; i < 6; ++i) {
    std::string_view octet = text.substr(i * 3, 2);
    if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
    auto byte = HexDecode(octet);
    if (!byte) return std::nullopt;
    mac[i] = static_cast<uint8_t>((*byte)[0]);
  }
  if (mac[0] & 0x01) return std::nullopt;
  if (std::all_of(mac.begin(), mac.end(), [](uint8_t b) { return b == 0; })) return std::nullopt;
  return mac;
}

std::string FormatMac(const MacAddress& mac) {
  std::string text;
  for (std::size_t i = 0; i < mac.size(); ++i) {
    if (i > 0) text.push_back(':');
    text += HexEncode(std::string_view(reinterpret_cast<const char*>(&mac[i]), 1));
  }
  return text;
}

bool ValidMachineId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), IsLowerHex) &&
         id.find_first_not_of('0') != std::string_view::npos;
}

std::optional<StaticIpv4> ParseStaticIpv4(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash + 1 >= text.size() || text.size() - slash > 3) {
    return std::nullopt;
  }
  auto address = ParseIpv4(text.substr(0, slash));
  if (!address) return std::nullopt;
  int prefix = 0;
  for (char c : text.substr(slash + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    prefix = prefix * 10 + (c - '0');
  }
  if (text[slash + 1] == '0' || prefix < 1 || prefix > 32) return std::nullopt;
  const uint8_t first = static_cast<uint8_t>(*address >> 24);
  if (first == 0 || first == 127 || first >= 224) return std::nullopt;
  const uint32_t host_mask = prefix == 32 ? 0 : ~uint32_t{0} >> prefix;
  const uint32_t host = *address & host_mask;
  if (prefix <= 30 && (host == 0 || host == host_mask)) return std::nullopt;
  return StaticIpv4{*address, prefix, std::string(text)};
}

std::optional<std::string> DecodeEntropy(std::string_view text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), IsHex)) return HexDecode(text);
  return Base64Decode(text);
}

// The optional "ipv4" member into `out`; a refusal when it is there but not a usable address.
std::optional<std::string> TakeIpv4(const json& request, std::string_view op,
                                    std::optional<StaticIpv4>& out) {
  if (!request.contains("ipv4")) return std::nullopt;
  const auto& member = request["ipv4"];
  if (member.is_string() && member.get_ref<const std::string&>().size() <= 18) {
    out = ParseStaticIpv4(member.get_ref<const std::string&>());
  }
  if (out) return std::nullopt;
  return std::string(op) +
         ": \"ipv4\" must be a unicast IPv4 address with its prefix length, such as "
         "\"10.77.0.21/24\", not the network or broadcast address of its subnet";
}

std::variant<CloneIdentity, std::string> ParseCloneIdentity(const json& request) {
  if (auto refused = RefuseUnknownMembers(request, kResetOp, kResetArguments)) return *refused;
  CloneIdentity identity;
  if (auto refused = Take(CheckHostname(request, kResetOp), identity.hostname)) return *refused;
  if (auto refused = Take(CheckMac(request), identity.mac)) return *refused;
  identity.mac_text = FormatMac(identity.mac);
  if (auto refused = Take(CheckMachineId(request), identity.machine_id)) return *refused;
  if (auto refused = Take(CheckEntropy(request, kResetOp), identity.entropy)) return *refused;
  if (auto refused = Take(CheckTime(request, kResetOp), identity.time_unix_ns)) return *refused;
  if (request.contains("ssh_host_key")) {
    std::string key;
    if (auto refused = Take(CheckSshHostKey(request), key)) return *refused;
    identity.ssh_host_key = std::move(key);
  }
  if (auto refused = TakeIpv4(request, kResetOp, identity.ipv4)) return *refused;
  return identity;
}

std::variant<CloneIdentityFinish, std::string> ParseCloneIdentityFinish(const json& request) {
  if (auto refused = RefuseUnknownMembers(request, kFinishOp, kFinishArguments)) return *refused;
  CloneIdentityFinish finish;
  if (auto refused = Take(CheckHostname(request, kFinishOp), finish.hostname)) return *refused;
  if (auto refused = Take(CheckEntropy(request, kFinishOp), finish.entropy)) return *refused;
  if (auto refused = Take(CheckTime(request, kFinishOp), finish.time_unix_ns)) return *refused;
  if (auto refused = TakeIpv4(request, kFinishOp, finish.ipv4)) return *refused;
  return finish;
}

}  // namespace ferry::guest
