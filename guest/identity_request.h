// The identity ops' requests as the guest receives them: CloneIdentity, who a cloned guest is to
// become, as ferryd sends it in reset_identity (see protocol.h); CloneIdentityFinish, the part
// finish_identity decides when a primed warm-pool guest becomes a clone; and the strict checks
// every argument passes before anything in the guest changes (identity_reset.h then makes the
// changes).
// Everything here comes from the host: it is validated, never trusted, and nothing of it is
// ever run or used as a path.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "guest/guest_system.h"

namespace ferry::guest {

inline constexpr std::size_t kMaxHostnameChars = 63;  // one RFC 1123 label
inline constexpr std::size_t kMinEntropyBytes = 32;
inline constexpr std::size_t kMaxEntropyBytes = 512;
inline constexpr std::size_t kEd25519KeyPairBytes = 64;
// A clock the host asks for must lie in [2020-01-01, 2100-01-01) UTC: a snapshot's clock is
// never older than ferry, and a later value is a unit mistake (ms or us for ns), not a time.
inline constexpr int64_t kMinTimeUnixNs = 1'577'836'800LL * 1'000'000'000;
inline constexpr int64_t kMaxTimeUnixNs = 4'102'444'800LL * 1'000'000'000;

// A static IPv4 address with its prefix, host byte order ("10.77.0.21/24").
struct StaticIpv4 {
  uint32_t address = 0;
  int prefix_length = 0;
  std::string text;  // as given, "10.77.0.21/24"
};

// "A.B.C.D/P": a unicast address (not 0/8, 127/8, multicast or above), P in 1..32, and for
// P <= 30 not the subnet's network or broadcast address. nullopt otherwise.
std::optional<StaticIpv4> ParseStaticIpv4(std::string_view text);

struct CloneIdentity {
  std::string hostname;
  MacAddress mac{};
  std::string mac_text;  // the MAC as "52:54:00:ab:cd:ef", lowercase
  std::string machine_id;
  std::string entropy;  // raw bytes, kMinEntropyBytes..kMaxEntropyBytes
  int64_t time_unix_ns = 0;
  // An ed25519 host key made by ferryd from the host's CSPRNG: the 32-byte seed then the 32-byte
  // public key. Optional: without it the guest runs dropbearkey, which under emulation costs a
  // program start (hundreds of ms). The host owns the guest's memory, so a key it makes is no
  // less the clone's own than one the guest makes.
  std::optional<std::string> ssh_host_key;
  // Tap networking: the clone's own static address, which replaces the parent's on the NIC
  // (the dhcp step then asks no DHCP server). Unset: the address is kept (or leased).
  std::optional<StaticIpv4> ipv4;
};

// What a primed guest still needs when it becomes a named clone (finish_identity): everything
// else was set while it waited in the pool, before its name was known.
struct CloneIdentityFinish {
  std::string hostname;
  std::string entropy;  // raw bytes, kMinEntropyBytes..kMaxEntropyBytes
  int64_t time_unix_ns = 0;
  // Tap networking: the clone's own address, set now (a pool guest is primed without one).
  std::optional<StaticIpv4> ipv4;
};

// The arguments of a reset_identity request (the request object itself, with "id" and "op"),
// or a message naming the first bad or missing argument and what is expected. Unknown members
// are refused too, so a misspelt optional argument does not pass silently. The entropy is never
// echoed back in a message.
std::variant<CloneIdentity, std::string> ParseCloneIdentity(const nlohmann::json& request);

// The same for a finish_identity request: hostname, entropy, time_unix_ns and the optional ipv4,
// each checked as in reset_identity. Any other member (a "mac", say) is refused:
// finish_identity changes nothing but these.
std::variant<CloneIdentityFinish, std::string> ParseCloneIdentityFinish(
    const nlohmann::json& request);

// 1 to 63 of [A-Za-z0-9-], not starting or ending with '-' (RFC 1123 section 2.1).
bool ValidHostnameLabel(std::string_view name);
// "xx:xx:xx:xx:xx:xx" (hex digits in either case) naming a unicast address that is not all
// zeros: the first octet's lowest bit, the multicast bit, must be clear.
std::optional<MacAddress> ParseUnicastMac(std::string_view text);
std::string FormatMac(const MacAddress& mac);
// 32 lowercase hex digits, not all zero (systemd's machine-id(5) format).
bool ValidMachineId(std::string_view id);
// Hex (only [0-9a-fA-F], even length) if it is that, else standard base64 with padding.
std::optional<std::string> DecodeEntropy(std::string_view text);

}  // namespace ferry::guest
