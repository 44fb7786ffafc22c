#include "guest/netlink_route.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

#include "guest/dhcp_message.h"

namespace ferry::guest {
namespace {

constexpr int kAckTimeoutSeconds = 2;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// One rtnetlink request: the header, the family's fixed part, then attributes, each aligned.
class NetlinkRequest {
 public:
  template <typename FixedPart>
  NetlinkRequest(uint16_t type, uint16_t flags, const FixedPart& fixed) {
    nlmsghdr header{};
    header.nlmsg_type = type;
    header.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    header.nlmsg_seq = 1;
    Append(&header, sizeof(header));
    Append(&fixed, sizeof(fixed));
  }

  void AddAttribute(uint16_t type, const void* data, std::size_t size) {
    rtattr attribute{};
    attribute.rta_type = type;
    attribute.rta_len = static_cast<uint16_t>(RTA_LENGTH(size));
    Append(&attribute, sizeof(attribute));
    Append(data, size);
  }
  void AddIpv4(uint16_t type, uint32_t address) {
    uint32_t network_order = htonl(address);
    AddAttribute(type, &network_order, sizeof(network_order));
  }

  // Sends the request and waits for the kernel's acknowledgement: nullopt when it did what was
  // asked, else what failed ("adding 10.0.2.16/24 to eth0: Operation not permitted").
  SystemError Send(const std::string& what, bool exists_is_success) {
    auto* header = reinterpret_cast<nlmsghdr*>(bytes_.data());
    header->nlmsg_len = static_cast<uint32_t>(bytes_.size());
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return Errno("netlink socket for " + what);
    SystemError error = Exchange(fd, what, exists_is_success);
    close(fd);
    return error;
  }

 private:
  void Append(const void* data, std::size_t size) {
    const auto* begin = static_cast<const char*>(data);
    bytes_.insert(bytes_.end(), begin, begin + size);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), '\0');
  }

  SystemError Exchange(int fd, const std::string& what, bool exists_is_success) {
    timeval timeout{kAckTimeoutSeconds, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) {
      return Errno("netlink SO_RCVTIMEO for " + what);
    }
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t sent;
    do {
      sent = sendto(fd, bytes_.data(), bytes_.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return Errno("netlink send for " + what);
    alignas(nlmsghdr) char answer[8192];
    while (true) {
      ssize_t n = recv(fd, answer, sizeof(answer), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return what + ": no answer from the kernel within " + std::to_string(kAckTimeoutSeconds) +
               " s";
      }
      if (n < 0) return Errno("netlink answer for " + what);
      auto remaining = static_cast<int>(n);
      for (auto* reply = reinterpret_cast<nlmsghdr*>(answer); NLMSG_OK(reply, remaining);
           reply = NLMSG_NEXT(reply, remaining)) {
        if (reply->nlmsg_seq != 1 || reply->nlmsg_type != NLMSG_ERROR) continue;
        if (reply->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          return "netlink answer for " + what + " is truncated";
        }
        int code = -static_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error;
        if (code == 0 || (code == EEXIST && exists_is_success)) return std::nullopt;
        return what + ": " + std::strerror(code);
      }
    }
  }

  std::string bytes_;
};

std::variant<int, std::string> InterfaceIndex(const std::string& iface) {
  unsigned index = if_nametoindex(iface.c_str());
  if (index == 0) return Errno("interface " + iface);
  return static_cast<int>(index);
}

// The fixed part of a request about an IPv4 address on `iface`, or why it cannot be made.
std::variant<ifaddrmsg, std::string> AddressHeader(const std::string& what,
                                                   const std::string& iface, int prefix_length) {
  if (prefix_length < 1 || prefix_length > 32) return what + ": prefix length out of range";
  auto index = InterfaceIndex(iface);
  if (auto* error = std::get_if<std::string>(&index)) return what + ": " + *error;
  ifaddrmsg fixed{};
  fixed.ifa_family = AF_INET;
  fixed.ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  fixed.ifa_index = static_cast<uint32_t>(std::get<int>(index));
  return fixed;
}

}  // namespace

SystemError NetlinkAddIpv4Address(const std::string& iface, uint32_t address, int prefix_length) {
  const std::string what =
      "adding " + FormatIpv4(address) + "/" + std::to_string(prefix_length) + " to " + iface;
  auto header = AddressHeader(what, iface, prefix_length);
  if (auto* error = std::get_if<std::string>(&header)) return *error;
  ifaddrmsg fixed = std::get<ifaddrmsg>(header);
  fixed.ifa_scope = RT_SCOPE_UNIVERSE;
  NetlinkRequest request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, fixed);
  request.AddIpv4(IFA_LOCAL, address);
  request.AddIpv4(IFA_ADDRESS, address);
  if (prefix_length < 31) {  // /31 and /32 have no broadcast address
    request.AddIpv4(IFA_BROADCAST, address | (~uint32_t{0} >> prefix_length));
  }
  return request.Send(what, /*exists_is_success=*/true);
}

SystemError NetlinkRemoveIpv4Address(const std::string& iface, uint32_t address,
                                     int prefix_length) {
  const std::string what =
      "removing " + FormatIpv4(address) + "/" + std::to_string(prefix_length) + " from " + iface;
  auto header = AddressHeader(what, iface, prefix_length);
  if (auto* error = std::get_if<std::string>(&header)) return *error;
  NetlinkRequest request(RTM_DELADDR, 0, std::get<ifaddrmsg>(header));
  request.AddIpv4(IFA_LOCAL, address);
  return request.Send(what, /*exists_is_success=*/false);
}

SystemError NetlinkReplaceDefaultRoute(const std::string& iface, uint32_t gateway) {
  const std::string what = "default route via " + FormatIpv4(gateway) + " dev " + iface;
  auto index = InterfaceIndex(iface);
  if (auto* error = std::get_if<std::string>(&index)) return what + ": " + *error;
  rtmsg fixed{};
  fixed.rtm_family = AF_INET;
  fixed.rtm_dst_len = 0;
  fixed.rtm_table = RT_TABLE_MAIN;
  fixed.rtm_protocol = RTPROT_BOOT;
  fixed.rtm_scope = RT_SCOPE_UNIVERSE;
  fixed.rtm_type = RTN_UNICAST;
  NetlinkRequest request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, fixed);
  request.AddIpv4(RTA_GATEWAY, gateway);
  const uint32_t oif = static_cast<uint32_t>(std::get<int>(index));
  request.AddAttribute(RTA_OIF, &oif, sizeof(oif));
  return request.Send(what, /*exists_is_success=*/false);
}

}  // namespace ferry::guest
