#include "vm/tap_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace ferry::vm {

namespace {

uint32_t MaskOf(int prefix) { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

std::string SubnetText(const Ipv4Prefix& p) {
  return FormatIpv4Address(p.address & MaskOf(p.prefix)) + "/" + std::to_string(p.prefix);
}

}  // namespace

std::string FormatIpv4Address(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

Result<std::string> NthCloneAddress(const std::string& first, int index) {
  FERRY_ASSIGN_OR_RETURN(Ipv4Prefix p, ParseIpv4Prefix(first));
  const uint32_t mask = MaskOf(p.prefix);
  // The last address a clone may take: the broadcast address is not one (but /31 and /32 have
  // none).
  const uint32_t last = (p.address | ~mask) - (p.prefix <= 30 ? 1 : 0);
  const uint64_t wanted = uint64_t{p.address} + static_cast<uint64_t>(index);
  if (index < 0 || wanted > last) {
    return Status::InvalidArgument("clone " + std::to_string(index + 1) + " counting up from " +
                                   first + " would leave the subnet " + SubnetText(p) + " (" +
                                   std::to_string(uint64_t{last} - p.address + 1) +
                                   " clones fit); give a lower --ip or fewer clones");
  }
  return FormatIpv4Address(static_cast<uint32_t>(wanted)) + "/" + std::to_string(p.prefix);
}

std::vector<Ipv4Prefix> BridgeAddresses(const std::string& bridge) {
  std::vector<Ipv4Prefix> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || bridge != a->ifa_name ||
        a->ifa_netmask == nullptr) {
      continue;
    }
    const auto* addr = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    const auto* mask = reinterpret_cast<const sockaddr_in*>(a->ifa_netmask);
    out.push_back({ntohl(addr->sin_addr.s_addr), __builtin_popcount(mask->sin_addr.s_addr)});
  }
  ::freeifaddrs(list);
  return out;
}

Status CheckAddressOnBridge(const std::string& vm, const std::string& ip, const std::string& bridge,
                            const std::vector<Ipv4Prefix>& bridge_addresses) {
  FERRY_ASSIGN_OR_RETURN(Ipv4Prefix p, ParseIpv4Prefix(ip));
  if (bridge_addresses.empty()) {
    return Status::FailedPrecondition(
        "vm " + vm + ": bridge " + bridge +
        " has no IPv4 address, so ferry cannot tell its subnet or probe it for address " + ip +
        "; give the bridge its address on the segment (ip addr add ... dev " + bridge + ")");
  }
  std::string subnets;
  for (const Ipv4Prefix& b : bridge_addresses) {
    if (b.address == p.address) {
      return Status::InvalidArgument("vm " + vm + ": address " + ip + " is bridge " + bridge +
                                     "'s own address; choose another --ip");
    }
  }
  for (const Ipv4Prefix& b : bridge_addresses) {
    const uint32_t mask = MaskOf(b.prefix);
    if (b.prefix == p.prefix && (b.address & mask) == (p.address & mask)) return Status::Ok();
    subnets += (subnets.empty() ? "" : ", ") + SubnetText(b);
  }
  return Status::InvalidArgument("vm " + vm + ": address " + ip + " is outside the subnet of bridge " +
                                 bridge + " (" + subnets + "); choose an --ip in it");
}

}  // namespace ferry::vm
