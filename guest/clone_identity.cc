#include "guest/clone_identity.h"

#include <algorithm>
#include <array>

#include "guest/encoding.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxEchoedChars = 80;
constexpr std::array<std::string_view, 8> kKnownMembers = {
    "id", "op", "hostname", "mac", "machine_id", "entropy", "time_unix_ns", "ssh_host_key"};

// A value from the request quoted in an error, shortened and as JSON so odd bytes stay visible.
std::string Quote(const json& value) {
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > kMaxEchoedChars) text = text.substr(0, kMaxEchoedChars) + "...";
  return text;
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsHex(char c) { return IsLowerHex(c) || (c >= 'A' && c <= 'F'); }

const std::string* StringMember(const json& request, const char* name, std::string& error) {
  auto it = request.find(name);
  if (it == request.end()) {
    error = std::string("reset_identity needs \"") + name + "\"";
    return nullptr;
  }
  if (!it->is_string()) {
    error = std::string("reset_identity: \"") + name + "\" must be a string, got " + Quote(*it);
    return nullptr;
  }
  return &it->get_ref<const std::string&>();
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

std::optional<std::string> DecodeEntropy(std::string_view text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), IsHex)) return HexDecode(text);
  return Base64Decode(text);
}

std::variant<CloneIdentity, std::string> ParseCloneIdentity(const json& request) {
  for (const auto& [key, unused] : request.items()) {
    if (std::find(kKnownMembers.begin(), kKnownMembers.end(), key) == kKnownMembers.end()) {
      return "reset_identity: unknown argument " + Quote(key) +
             "; it takes hostname, mac, machine_id, entropy, time_unix_ns and ssh_host_key";
    }
  }
  CloneIdentity identity;
  std::string error;

  const std::string* hostname = StringMember(request, "hostname", error);
  if (hostname == nullptr) return error;
  if (!ValidHostnameLabel(*hostname)) {
    return "reset_identity: \"hostname\" must be 1 to 63 letters, digits and '-', not starting "
           "or ending with '-' (an RFC 1123 label), got " +
           Quote(*hostname);
  }
  identity.hostname = *hostname;

  const std::string* mac = StringMember(request, "mac", error);
  if (mac == nullptr) return error;
  auto parsed_mac = ParseUnicastMac(*mac);
  if (!parsed_mac) {
    return "reset_identity: \"mac\" must be a unicast MAC address like \"52:54:00:12:34:56\" "
           "(six hex octets, first octet even, not all zero), got " +
           Quote(*mac);
  }
  identity.mac = *parsed_mac;
  identity.mac_text = FormatMac(*parsed_mac);

  const std::string* machine_id = StringMember(request, "machine_id", error);
  if (machine_id == nullptr) return error;
  if (!ValidMachineId(*machine_id)) {
    return "reset_identity: \"machine_id\" must be 32 lowercase hex digits, not all zero, got " +
           Quote(*machine_id);
  }
  identity.machine_id = *machine_id;

  const std::string* entropy = StringMember(request, "entropy", error);
  if (entropy == nullptr) return error;
  auto bytes = DecodeEntropy(*entropy);
  if (!bytes) {
    return "reset_identity: \"entropy\" must be hex or padded standard base64 (" +
           std::to_string(entropy->size()) + " characters that are neither were sent)";
  }
  if (bytes->size() < kMinEntropyBytes || bytes->size() > kMaxEntropyBytes) {
    return "reset_identity: \"entropy\" must decode to " + std::to_string(kMinEntropyBytes) +
           " to " + std::to_string(kMaxEntropyBytes) + " bytes from the host's CSPRNG, got " +
           std::to_string(bytes->size());
  }
  // A zeroed or constant buffer is a host bug; crediting it as entropy would be a lie.
  if (std::all_of(bytes->begin(), bytes->end(), [&](char b) { return b == bytes->front(); })) {
    return "reset_identity: \"entropy\" is " + std::to_string(bytes->size()) +
           " copies of one byte value, which is not random; send bytes from the host's CSPRNG";
  }
  identity.entropy = std::move(*bytes);

  auto time_it = request.find("time_unix_ns");
  if (time_it == request.end()) return std::string("reset_identity needs \"time_unix_ns\"");
  if (!time_it->is_number_integer()) {
    return "reset_identity: \"time_unix_ns\" must be an integer (nanoseconds since the Unix "
           "epoch), got " +
           Quote(*time_it);
  }
  // is_number_integer includes unsigned values past int64; those are out of range anyway.
  bool in_range =
      time_it->is_number_unsigned()
          ? time_it->get<uint64_t>() < static_cast<uint64_t>(kMaxTimeUnixNs) &&
                time_it->get<uint64_t>() >= static_cast<uint64_t>(kMinTimeUnixNs)
          : time_it->get<int64_t>() >= kMinTimeUnixNs && time_it->get<int64_t>() < kMaxTimeUnixNs;
  if (!in_range) {
    return "reset_identity: \"time_unix_ns\" must be nanoseconds since the Unix epoch between "
           "2020-01-01 and 2100-01-01, got " +
           Quote(*time_it);
  }
  identity.time_unix_ns = time_it->get<int64_t>();

  if (request.contains("ssh_host_key")) {
    const std::string* key = StringMember(request, "ssh_host_key", error);
    if (key == nullptr) return error;
    bool hex = !key->empty() && std::all_of(key->begin(), key->end(), IsHex);
    std::optional<std::string> raw = hex ? HexDecode(*key) : std::nullopt;
    if (!raw || raw->size() != kEd25519KeyPairBytes) {
      return "reset_identity: \"ssh_host_key\" must be " +
             std::to_string(kEd25519KeyPairBytes * 2) +
             " hex digits (an ed25519 seed then its public key); got " +
             std::to_string(key->size()) + " characters";
    }
    if (std::all_of(raw->begin(), raw->end(), [&](char b) { return b == raw->front(); })) {
      return std::string("reset_identity: \"ssh_host_key\" is one byte value repeated, which "
                         "is not a key; make it from the host's CSPRNG");
    }
    identity.ssh_host_key = std::move(*raw);
  }
  return identity;
}

}  // namespace ferry::guest
