#include "vm/vm_admission.h"

#include <sys/un.h>

#include <cstdint>

#include "vm/tap_address.h"

namespace ferry::vm {

namespace {

std::string AddressOf(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

}  // namespace

Status CheckPortsUnclaimed(const VmSpec& spec, const std::vector<NetworkClaim>& claims) {
  const NetworkSpec& mine = spec.network;
  for (const NetworkClaim& other : claims) {
    if (other.vm == spec.name) continue;
    const NetworkSpec& theirs = other.network;
    for (const auto& f : mine.forwards) {
      for (const auto& g : theirs.forwards) {
        if (f.host_port == g.host_port) {
          return Status::ResourceExhausted("vm " + spec.name + ": host port " +
                                           std::to_string(f.host_port) + " is used by vm " +
                                           other.vm + "; choose another host port for --forward");
        }
      }
    }
    // Two running VMs on one segment with one address would each get half the traffic.
    if (mine.mode == NetworkMode::kTap && theirs.mode == NetworkMode::kTap &&
        mine.bridge == theirs.bridge && AddressOf(mine.ip) == AddressOf(theirs.ip)) {
      return Status::ResourceExhausted("vm " + spec.name + ": address " + mine.ip + " on bridge " +
                                       mine.bridge + " is used by vm " + other.vm +
                                       "; choose another --ip");
    }
  }
  return Status::Ok();
}

uint16_t PickFreePort(const VmSpec& spec, const std::vector<NetworkClaim>& claims,
                      const std::function<uint16_t()>& ephemeral_port) {
  for (int attempt = 0; attempt < 32; ++attempt) {
    const uint16_t port = ephemeral_port();
    VmSpec probe = spec;  // only its name and this one forward matter to the check
    probe.network.forwards = {{port, 1}};
    if (port != 0 && CheckPortsUnclaimed(probe, claims).ok()) return port;
  }
  return 0;
}

Status AdmitTapClone(const VmSpec& spec, const std::vector<Ipv4Prefix>& bridge_addresses) {
  if (spec.network.mode != NetworkMode::kTap) return Status::Ok();
  return CheckAddressOnBridge(spec.name, spec.network.ip, spec.network.bridge, bridge_addresses);
}

Status AddressInUse(const VmSpec& spec, const std::string& mac) {
  return Status::AlreadyExists("vm " + spec.name + ": address " + spec.network.ip +
                               " is in use on bridge " + spec.network.bridge + " (" + mac +
                               " answered a duplicate address probe); nothing was started; "
                               "choose another --ip");
}

Status AdmitNewVm(VmSpec& spec, const VmPaths& paths, bool maps_snapshot_ram,
                  const std::vector<NetworkClaim>& claims, HostCapacity capacity,
                  const std::function<uint16_t()>& ephemeral_port) {
  if (paths.qmp_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Status::InvalidArgument("vm " + spec.name + ": socket path " + paths.qmp_socket +
                                   " is too long for a UNIX socket; use a shorter --state-dir");
  }
  FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(spec, claims));
  // A clone maps its snapshot's RAM file: it needs no room for a file of its own.
  if (maps_snapshot_ram) capacity.ram_dir_free_bytes = UINT64_MAX;
  FERRY_RETURN_IF_ERROR(CheckFitsHost(spec, capacity));
  for (auto& f : spec.network.forwards) {
    if (f.host_port == 0) f.host_port = PickFreePort(spec, claims, ephemeral_port);
  }
  return Status::Ok();
}

}  // namespace ferry::vm
