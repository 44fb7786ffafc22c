#include "vm/vm_spec.h"

#include <charconv>
#include <optional>
#include <set>

#include "core/ids.h"

namespace ferry::vm {

using nlohmann::json;

namespace {

Result<uint64_t> ParseWhole(const std::string& digits) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return Status::InvalidArgument("not a whole number");
  }
  return value;
}

// `allow_any`: 0 stands for "any free port", chosen when the VM is created.
Result<uint16_t> ParsePort(const std::string& text, const std::string& what, bool allow_any) {
  auto v = ParseWhole(text);
  if (!v.ok() || (*v == 0 && !allow_any) || *v > 65535) {
    return Status::InvalidArgument(what + " '" + text + "' is not a port number (" +
                                   (allow_any ? "0 for any free one, or 1" : "1") + "-65535)");
  }
  return static_cast<uint16_t>(*v);
}

// A JSON number that is a non-negative integer (signed or unsigned in nlohmann's model).
std::optional<uint64_t> AsWhole(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  return std::nullopt;
}

Status CheckKeys(const json& j, const std::set<std::string>& allowed, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!allowed.count(it.key())) {
      return Status::InvalidArgument(where + ": unknown field '" + it.key() + "'");
    }
  }
  return Status::Ok();
}

Result<NetworkSpec> NetworkFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("network must be an object");
  FERRY_RETURN_IF_ERROR(CheckKeys(j, {"mode", "forwards"}, "network"));
  NetworkSpec net;
  if (j.contains("mode")) {
    if (!j["mode"].is_string()) return Status::InvalidArgument("network.mode must be a string");
    net.mode = j["mode"];
  }
  if (net.mode != "user") {
    return Status::InvalidArgument("network mode '" + net.mode + "' is not supported; use 'user'");
  }
  if (j.contains("forwards")) {
    if (!j["forwards"].is_array()) return Status::InvalidArgument("network.forwards must be a list");
    std::set<uint16_t> host_ports;
    for (const json& f : j["forwards"]) {
      PortForwardSpec fwd;
      if (f.is_string()) {
        FERRY_ASSIGN_OR_RETURN(fwd, ParseForward(f.get<std::string>()));
      } else if (f.is_object() && f.contains("host_port") && f.contains("guest_port") &&
                 AsWhole(f["host_port"]) && AsWhole(f["guest_port"])) {
        FERRY_RETURN_IF_ERROR(CheckKeys(f, {"host_port", "guest_port"}, "network.forwards[]"));
        FERRY_ASSIGN_OR_RETURN(fwd.host_port,
                               ParsePort(std::to_string(*AsWhole(f["host_port"])), "host port", true));
        FERRY_ASSIGN_OR_RETURN(fwd.guest_port,
                               ParsePort(std::to_string(*AsWhole(f["guest_port"])), "guest port", false));
      } else {
        return Status::InvalidArgument(
            "a forward must be \"HOST:GUEST\" or {\"host_port\": N, \"guest_port\": N}");
      }
      if (fwd.host_port != 0 && !host_ports.insert(fwd.host_port).second) {
        return Status::InvalidArgument("host port " + std::to_string(fwd.host_port) +
                                       " is forwarded twice");
      }
      net.forwards.push_back(fwd);
    }
  }
  return net;
}

}  // namespace

Result<uint64_t> ParseMemoryMiB(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("memory '" + text + "' " + why +
                                   "; give a whole number of MiB such as 256, 512M or 1G");
  };
  std::string digits = text;
  uint64_t scale = 1;
  for (const auto& [suffix, factor] : std::initializer_list<std::pair<std::string, uint64_t>>{
           {"GiB", 1024}, {"MiB", 1}, {"G", 1024}, {"M", 1}}) {
    if (digits.size() > suffix.size() &&
        digits.compare(digits.size() - suffix.size(), suffix.size(), suffix) == 0) {
      digits.resize(digits.size() - suffix.size());
      scale = factor;
      break;
    }
  }
  auto value = ParseWhole(digits);
  if (!value.ok()) return bad("is not a whole number of MiB");
  if (*value == 0) return bad("is zero");
  if (*value > VmSpec::kMaxMemoryMiB / scale) return bad("is too large");
  uint64_t mib = *value * scale;
  if (mib < VmSpec::kMinMemoryMiB) {
    return bad("is below the minimum of " + std::to_string(VmSpec::kMinMemoryMiB) + " MiB");
  }
  return mib;
}

Result<PortForwardSpec> ParseForward(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos) {
    return Status::InvalidArgument("forward '" + text +
                                   "' is not HOST_PORT:GUEST_PORT (for example 16379:6379)");
  }
  PortForwardSpec fwd;
  FERRY_ASSIGN_OR_RETURN(fwd.host_port, ParsePort(text.substr(0, colon), "host port", true));
  FERRY_ASSIGN_OR_RETURN(fwd.guest_port, ParsePort(text.substr(colon + 1), "guest port", false));
  return fwd;
}

Result<VmSpec> VmSpec::FromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a VM spec must be a JSON object");
  VmSpec spec;
  if (!j.contains("name") || !j["name"].is_string()) {
    return Status::InvalidArgument("a VM spec needs a \"name\" string");
  }
  spec.name = j["name"];
  FERRY_RETURN_IF_ERROR(ValidateName("vm", spec.name));
  const std::string where = "vm " + spec.name;
  auto in_context = [&](Status s) { return s.WithContext(where); };
  Status keys = CheckKeys(j, {"name", "image", "memory", "memory_mib", "cpus", "network"}, where);
  if (!keys.ok()) return keys;

  if (j.contains("image")) {
    if (!j["image"].is_string()) return in_context(Status::InvalidArgument("image must be a string"));
    spec.image = j["image"];
    Status st = ValidateName("image", spec.image);
    if (!st.ok()) return in_context(st);
  }
  if (j.contains("memory") && j.contains("memory_mib")) {
    return in_context(Status::InvalidArgument("give either memory or memory_mib, not both"));
  }
  if (j.contains("memory")) {
    if (!j["memory"].is_string()) {
      return in_context(Status::InvalidArgument("memory must be a string such as \"512M\""));
    }
    auto mib = ParseMemoryMiB(j["memory"]);
    if (!mib.ok()) return in_context(mib.status());
    spec.memory_mib = *mib;
  } else if (j.contains("memory_mib")) {
    const json& m = j["memory_mib"];
    if (!AsWhole(m)) {
      return in_context(Status::InvalidArgument("memory_mib " + m.dump() +
                                                " is not a whole number of MiB"));
    }
    auto mib = ParseMemoryMiB(std::to_string(*AsWhole(m)));
    if (!mib.ok()) return in_context(mib.status());
    spec.memory_mib = *mib;
  }
  if (j.contains("cpus")) {
    const json& c = j["cpus"];
    auto cpus = AsWhole(c);
    if (!cpus || *cpus < 1 || *cpus > static_cast<uint64_t>(kMaxCpus)) {
      return in_context(Status::InvalidArgument("cpus " + c.dump() + " is not a number from 1 to " +
                                                std::to_string(kMaxCpus)));
    }
    spec.cpus = static_cast<int>(*cpus);
  }
  if (j.contains("network")) {
    auto net = NetworkFromJson(j["network"]);
    if (!net.ok()) return in_context(net.status());
    spec.network = *net;
  }
  return spec;
}

json VmSpec::ToJson() const {
  json forwards = json::array();
  for (const auto& f : network.forwards) {
    forwards.push_back({{"host_port", f.host_port}, {"guest_port", f.guest_port}});
  }
  return {{"name", name},
          {"image", image},
          {"memory_mib", memory_mib},
          {"cpus", cpus},
          {"network", {{"mode", network.mode}, {"forwards", forwards}}}};
}

Status CheckFitsHost(const VmSpec& spec, const HostCapacity& host) {
  const std::string where = "vm " + spec.name;
  const uint64_t want = spec.memory_mib << 20;
  const uint64_t can = std::min(host.mem_available_bytes, host.ram_dir_free_bytes);
  if (want > can) {
    return Status::ResourceExhausted(
        where + ": " + std::to_string(spec.memory_mib) + " MiB of memory requested but this host " +
        "can give at most " + std::to_string(can >> 20) + " MiB now (the smaller of available " +
        "memory and free space in the RAM directory); ask for less memory");
  }
  for (const auto& f : spec.network.forwards) {
    if (f.host_port != 0 && host.tcp_port_free && !host.tcp_port_free(f.host_port)) {
      return Status::ResourceExhausted(where + ": host port " + std::to_string(f.host_port) +
                                       " is already in use; choose another host port for --forward");
    }
  }
  return Status::Ok();
}

}  // namespace ferry::vm
