// What a user asks for when creating a VM, and the checks that run before anything is touched:
// a request that fails here has changed nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::vm {

struct PortForwardSpec {
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
  bool operator==(const PortForwardSpec&) const = default;
};

// Networking is a mode plus its settings. The JSON names the mode "user" or "tap".
//   kUser (default): QEMU's user-mode networking; the host reaches the guest through
//          `forwards` on 127.0.0.1. The guest takes its address by DHCP from QEMU.
//   kTap:  a tap interface on the host attached to `bridge`; the guest has the static address
//          `ip` (with `gateway` as its default route, if given) on the bridge's L2 segment, so
//          the VM keeps its address and connections when it moves to a host on that segment.
//          Forwards are refused: the VM is reached at its own address.
enum class NetworkMode { kUser, kTap };

const char* NetworkModeName(NetworkMode mode);  // "user" / "tap"
std::optional<NetworkMode> NetworkModeFromName(std::string_view name);

struct NetworkSpec {
  static constexpr const char* kDefaultBridge = "ferrybr0";

  NetworkMode mode = NetworkMode::kUser;
  std::vector<PortForwardSpec> forwards;
  std::string bridge;   // tap only: the host bridge ("ferrybr0" when not given)
  std::string ip;       // tap only, required: IPv4 address with prefix, "10.77.0.10/24"
  std::string gateway;  // tap only, optional: IPv4 address in ip's subnet, "10.77.0.1"
  bool operator==(const NetworkSpec&) const = default;
};

struct VmSpec {
  static constexpr uint64_t kMinMemoryMiB = 64;
  static constexpr uint64_t kMaxMemoryMiB = uint64_t{1} << 24;  // 16 TiB
  static constexpr int kMaxCpus = 64;
  static constexpr uint64_t kMinDiskMiB = 16;
  static constexpr uint64_t kMaxDiskMiB = uint64_t{1} << 24;  // 16 TiB

  std::string name;
  std::string image = "default";
  uint64_t memory_mib = 256;
  int cpus = 1;
  NetworkSpec network;
  // A qcow2 data disk of this size, the guest's /dev/vda (0: none). Snapshots freeze it; clones
  // write to their own overlay on the frozen image.
  uint64_t disk_mib = 0;
  // The owner's signed policy document (ferry policy sign), as text, or "" for a VM without one.
  // Its signature and binding are checked by the VM service, which can read it.
  std::string policy;
  // "" unless this VM is a clone: then the VM its policy is bound to (the parent the clone's
  // snapshot was taken of, or that parent's own cloned_from), which the policy names instead of
  // the clone (owner_policy.h, binding rule). Set by ferry when it clones, never by a user.
  std::string cloned_from;

  // Accepts "memory_mib" (a whole number) or "memory" (a string such as "512", "512M", "1G").
  // Every field is checked: type, range, unknown keys. Errors name the field and the VM.
  static Result<VmSpec> FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  bool operator==(const VmSpec&) const = default;
};

// "256", "256M", "256MiB", "1G", "1GiB" -> MiB. Fractions, zero, negatives and other units are
// refused: guest RAM is a whole number of MiB.
Result<uint64_t> ParseMemoryMiB(const std::string& text);
// "16379:6379" -> host 16379, guest 6379. Host port 0 means any free port, picked at creation.
Result<PortForwardSpec> ParseForward(const std::string& text);
// "10.77.0.10/24" -> the address as a 32-bit number in host order, and the prefix length (1-32).
struct Ipv4Prefix {
  uint32_t address = 0;
  int prefix = 0;
};
Result<Ipv4Prefix> ParseIpv4Prefix(const std::string& text);

// What the host can give right now; gathered by the service, filled by hand in tests.
struct HostCapacity {
  uint64_t mem_available_bytes = 0;  // MemAvailable of /proc/meminfo
  uint64_t ram_dir_free_bytes = 0;   // free space on the tmpfs that holds RAM files
  std::function<bool(uint16_t)> tcp_port_free;  // may a listener bind 127.0.0.1:port now?
  // Can a tap be attached to this bridge now? Ok, or an error naming the bridge and the fix.
  // Unset: not checked.
  std::function<Status(const std::string& bridge)> bridge_usable;
};

// REQUIRES: spec came from VmSpec::FromJson. Checks memory, ports and the tap bridge against the
// host.
Status CheckFitsHost(const VmSpec& spec, const HostCapacity& host);

}  // namespace ferry::vm
