#include "vm/vm_spec.h"

#include <charconv>
#include <optional>
#include <set>

#include "core/ids.h"
#include "core/interface_name.h"

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

// Dotted-quad IPv4, each part 0-255 without leading zeros (so "010" is not read as octal).
std::optional<uint32_t> ParseIpv4(const std::string& text) {
  uint32_t address = 0;
  size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    size_t end = part < 3 ? text.find('.', pos) : text.size();
    if (end == std::string::npos) return std::nullopt;
    const std::string digits = text.substr(pos, end - pos);
    auto v = ParseWhole(digits);
    if (!v.ok() || *v > 255 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
    address = (address << 8) | static_cast<uint32_t>(*v);
    pos = end + 1;
  }
  return address;
}

std::string FormatIpv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

// REQUIRES: net.mode is kTap; j["bridge"], j["ip"], j["gateway"] are strings when present.
Status TapSettingsFromJson(const json& j, NetworkSpec& net) {
  net.bridge = j.value("bridge", std::string(NetworkSpec::kDefaultBridge));
  if (auto bridge = InterfaceName::Parse(net.bridge, "network.bridge"); !bridge.ok()) {
    return bridge.status();
  }
  if (!j.contains("ip")) {
    return Status::InvalidArgument(
        "network.ip is required for tap networking: the guest's address with its prefix, such "
        "as --ip 10.77.0.10/24");
  }
  net.ip = j["ip"];
  auto ip = ParseIpv4Prefix(net.ip);
  if (!ip.ok()) return Status::InvalidArgument("network.ip " + ip.status().message());
  if (j.contains("gateway")) {
    net.gateway = j["gateway"];
    auto gw = ParseIpv4(net.gateway);
    if (!gw) {
      return Status::InvalidArgument("network.gateway '" + net.gateway +
                                     "' is not an IPv4 address such as 10.77.0.1");
    }
    const uint32_t mask = ip->prefix == 32 ? ~uint32_t{0} : ~(~uint32_t{0} >> ip->prefix);
    if ((*gw & mask) != (ip->address & mask) || *gw == ip->address) {
      return Status::InvalidArgument(
          "network.gateway " + net.gateway + " is not another address in " +
          FormatIpv4(ip->address & mask) + "/" + std::to_string(ip->prefix) +
          ", the subnet of network.ip " + net.ip);
    }
  }
  return Status::Ok();
}

Result<NetworkSpec> NetworkFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("network must be an object");
  FERRY_RETURN_IF_ERROR(CheckKeys(j, {"mode", "forwards", "bridge", "ip", "gateway"}, "network"));
  NetworkSpec net;
  if (j.contains("mode")) {
    if (!j["mode"].is_string()) return Status::InvalidArgument("network.mode must be a string");
    const std::string name = j["mode"];
    auto mode = NetworkModeFromName(name);
    if (!mode) {
      return Status::InvalidArgument("network mode '" + name +
                                     "' is not supported; use 'user' or 'tap'");
    }
    net.mode = *mode;
  }
  for (const char* key : {"bridge", "ip", "gateway"}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) {
      return Status::InvalidArgument(std::string("network.") + key + " must be a string");
    }
    if (net.mode != NetworkMode::kTap) {
      return Status::InvalidArgument(std::string("network.") + key +
                                     " is only for tap networking; add --net tap (mode \"tap\")");
    }
  }
  if (net.mode == NetworkMode::kTap) FERRY_RETURN_IF_ERROR(TapSettingsFromJson(j, net));
  if (j.contains("forwards")) {
    if (!j["forwards"].is_array())
      return Status::InvalidArgument("network.forwards must be a list");
    std::set<uint16_t> host_ports;
    for (const json& f : j["forwards"]) {
      PortForwardSpec fwd;
      if (f.is_string()) {
        FERRY_ASSIGN_OR_RETURN(fwd, ParseForward(f.get<std::string>()));
      } else if (f.is_object() && f.contains("host_port") && f.contains("guest_port") &&
                 AsWhole(f["host_port"]) && AsWhole(f["guest_port"])) {
        FERRY_RETURN_IF_ERROR(CheckKeys(f, {"host_port", "guest_port"}, "network.forwards[]"));
        FERRY_ASSIGN_OR_RETURN(
            fwd.host_port, ParsePort(std::to_string(*AsWhole(f["host_port"])), "host port", true));
        FERRY_ASSIGN_OR_RETURN(fwd.guest_port, ParsePort(std::to_string(*AsWhole(f["guest_port"])),
                                                         "guest port", false));
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
  if (net.mode == NetworkMode::kTap && !net.forwards.empty()) {
    return Status::InvalidArgument(
        "network.forwards: port forwards are for user networking; a VM on tap networking is "
        "reached at its own address " +
        net.ip.substr(0, net.ip.find('/')) + " on bridge " + net.bridge + ", so drop --forward");
  }
  return net;
}

}  // namespace

const char* NetworkModeName(NetworkMode mode) { return mode == NetworkMode::kTap ? "tap" : "user"; }

std::optional<NetworkMode> NetworkModeFromName(std::string_view name) {
  if (name == NetworkModeName(NetworkMode::kUser)) return NetworkMode::kUser;
  if (name == NetworkModeName(NetworkMode::kTap)) return NetworkMode::kTap;
  return std::nullopt;
}

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

Result<Ipv4Prefix> ParseIpv4Prefix(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + text + "' " + why +
                                   "; give an IPv4 address with its prefix, such as 10.77.0.10/24");
  };
  size_t slash = text.find('/');
  if (slash == std::string::npos) return bad("has no prefix length");
  auto address = ParseIpv4(text.substr(0, slash));
  if (!address) return bad("is not an IPv4 address");
  auto prefix = ParseWhole(text.substr(slash + 1));
  if (!prefix.ok() || *prefix < 1 || *prefix > 32) return bad("has a prefix length out of 1-32");
  Ipv4Prefix out{*address, static_cast<int>(*prefix)};
  const uint32_t host_mask = out.prefix == 32 ? 0 : ~uint32_t{0} >> out.prefix;
  const uint8_t first = static_cast<uint8_t>(out.address >> 24);
  if (first == 0 || first == 127 || first >= 224) {
    return bad("is not a unicast address a guest can have");
  }
  // In subnets of 4 addresses or more, the all-zeros and all-ones host parts are the network and
  // its broadcast (RFC 3021 lets /31 use both).
  const uint32_t host_part = out.address & host_mask;
  if (out.prefix <= 30 && (host_part == 0 || host_part == host_mask)) {
    return bad("is the network or broadcast address of its subnet");
  }
  return out;
}

namespace {

// "memory" (a string such as "512M") or "memory_mib" (a whole number), not both; `fallback`
// when neither is given.
Result<uint64_t> MemoryFromJson(const json& j, uint64_t fallback) {
  if (j.contains("memory") && j.contains("memory_mib")) {
    return Status::InvalidArgument("give either memory or memory_mib, not both");
  }
  if (j.contains("memory")) {
    if (!j["memory"].is_string()) {
      return Status::InvalidArgument("memory must be a string such as \"512M\"");
    }
    return ParseMemoryMiB(j["memory"]);
  }
  if (j.contains("memory_mib")) {
    const json& m = j["memory_mib"];
    if (!AsWhole(m)) {
      return Status::InvalidArgument("memory_mib " + m.dump() + " is not a whole number of MiB");
    }
    return ParseMemoryMiB(std::to_string(*AsWhole(m)));
  }
  return fallback;
}

// A data disk: "1G" like memory, or a whole number of MiB.
Result<uint64_t> DiskFromJson(const json& d) {
  Result<uint64_t> mib = d.is_string() ? ParseMemoryMiB(d.get<std::string>())
                         : AsWhole(d)  ? ParseMemoryMiB(std::to_string(*AsWhole(d)))
                                       : Status::InvalidArgument("");
  if (!mib.ok() || *mib < VmSpec::kMinDiskMiB || *mib > VmSpec::kMaxDiskMiB) {
    return Status::InvalidArgument("disk " + d.dump() + " is not a size from " +
                                   std::to_string(VmSpec::kMinDiskMiB) +
                                   " MiB to 16 TiB such as \"1G\"");
  }
  return mib;
}

}  // namespace

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
  Status keys = CheckKeys(
      j,
      {"name", "image", "memory", "memory_mib", "cpus", "network", "disk", "policy", "cloned_from"},
      where);
  if (!keys.ok()) return keys;

  if (j.contains("image")) {
    if (!j["image"].is_string())
      return in_context(Status::InvalidArgument("image must be a string"));
    spec.image = j["image"];
    Status st = ValidateName("image", spec.image);
    if (!st.ok()) return in_context(st);
  }
  auto memory = MemoryFromJson(j, spec.memory_mib);
  if (!memory.ok()) return in_context(memory.status());
  spec.memory_mib = *memory;
  if (j.contains("cpus")) {
    const json& c = j["cpus"];
    auto cpus = AsWhole(c);
    if (!cpus || *cpus < 1 || *cpus > static_cast<uint64_t>(kMaxCpus)) {
      return in_context(Status::InvalidArgument("cpus " + c.dump() + " is not a number from 1 to " +
                                                std::to_string(kMaxCpus)));
    }
    spec.cpus = static_cast<int>(*cpus);
  }
  if (j.contains("disk")) {
    auto disk = DiskFromJson(j["disk"]);
    if (!disk.ok()) return in_context(disk.status());
    spec.disk_mib = *disk;
  }
  if (j.contains("policy")) {
    if (!j["policy"].is_string()) {
      return in_context(Status::InvalidArgument("policy must be the text of a policy document"));
    }
    spec.policy = j["policy"];
  }
  if (j.contains("cloned_from")) {
    if (!j["cloned_from"].is_string()) {
      return in_context(Status::InvalidArgument("cloned_from must be a VM name"));
    }
    spec.cloned_from = j["cloned_from"];
    Status st = ValidateName("vm", spec.cloned_from);
    if (!st.ok()) return in_context(st.WithContext("cloned_from"));
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
  json net = {{"mode", NetworkModeName(network.mode)}, {"forwards", forwards}};
  if (network.mode == NetworkMode::kTap) {
    net["bridge"] = network.bridge;
    net["ip"] = network.ip;
    if (!network.gateway.empty()) net["gateway"] = network.gateway;
  }
  json j = {{"name", name},
            {"image", image},
            {"memory_mib", memory_mib},
            {"cpus", cpus},
            {"network", net}};
  if (disk_mib != 0) j["disk"] = std::to_string(disk_mib) + "M";
  if (!policy.empty()) j["policy"] = policy;
  if (!cloned_from.empty()) j["cloned_from"] = cloned_from;
  return j;
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
  if (spec.network.mode == NetworkMode::kTap && host.bridge_usable) {
    Status bridge = host.bridge_usable(spec.network.bridge);
    if (!bridge.ok()) return bridge.WithContext(where);
  }
  for (const auto& f : spec.network.forwards) {
    if (f.host_port != 0 && host.tcp_port_free && !host.tcp_port_free(f.host_port)) {
      return Status::ResourceExhausted(
          where + ": host port " + std::to_string(f.host_port) +
          " is already in use; choose another host port for --forward");
    }
  }
  return Status::Ok();
}

}  // namespace ferry::vm
