// What a user asks for when creating a VM, and the checks that run before anything is touched:
// a request that fails here has changed nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ferry::vm {

struct PortForwardSpec {
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
  bool operator==(const PortForwardSpec&) const = default;
};

// Networking is a mode plus its settings, so tap/bridge can be added as a new mode later.
struct NetworkSpec {
  std::string mode = "user";
  std::vector<PortForwardSpec> forwards;
  bool operator==(const NetworkSpec&) const = default;
};

struct VmSpec {
  static constexpr uint64_t kMinMemoryMiB = 64;
  static constexpr uint64_t kMaxMemoryMiB = uint64_t{1} << 24;  // 16 TiB
  static constexpr int kMaxCpus = 64;

  std::string name;
  std::string image = "default";
  uint64_t memory_mib = 256;
  int cpus = 1;
  NetworkSpec network;

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

// What the host can give right now; gathered by the service, filled by hand in tests.
struct HostCapacity {
  uint64_t mem_available_bytes = 0;  // MemAvailable of /proc/meminfo
  uint64_t ram_dir_free_bytes = 0;   // free space on the tmpfs that holds RAM files
  std::function<bool(uint16_t)> tcp_port_free;  // may a listener bind 127.0.0.1:port now?
};

// REQUIRES: spec came from VmSpec::FromJson. Checks memory and ports against the host.
Status CheckFitsHost(const VmSpec& spec, const HostCapacity& host);

}  // namespace ferry::vm
