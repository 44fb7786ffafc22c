// IPv4 addresses and the default route set through rtnetlink (NETLINK_ROUTE), the interface
// `ip addr add` and `ip route replace` use, so that applying a lease starts no program.
// Each call opens its own socket, sends one request and waits (at most 2 s) for the kernel's
// acknowledgement. REQUIRES: root (CAP_NET_ADMIN).
#pragma once

#include <cstdint>
#include <string>

#include "guest/guest_system.h"

namespace ferry::guest {

// Adds address/prefix_length to the interface (RTM_NEWADDR), with the subnet's broadcast address
// as `ip addr add ... brd +` would set it. An address the interface already has is success.
SystemError NetlinkAddIpv4Address(const std::string& iface, uint32_t address, int prefix_length);

// Removes address/prefix_length from the interface (RTM_DELADDR), as `ip addr del` does; routes
// through it go with it.
SystemError NetlinkRemoveIpv4Address(const std::string& iface, uint32_t address,
                                     int prefix_length);

// Sets the main table's default route to go via `gateway` out of `iface` (RTM_NEWROUTE with
// NLM_F_CREATE | NLM_F_REPLACE), whatever default route there was.
SystemError NetlinkReplaceDefaultRoute(const std::string& iface, uint32_t gateway);

}  // namespace ferry::guest
