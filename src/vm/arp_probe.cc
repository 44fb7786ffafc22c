#include "vm/arp_probe.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/unique_fd.h"

namespace ferry::vm {

namespace {

constexpr size_t kEtherHeader = 14;
constexpr size_t kArpIpv4 = 28;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

std::string MacText(const uint8_t* m) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return text;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::array<uint8_t, 42> ArpProbeFrame(const EtherAddress& sender_mac, uint32_t target) {
  std::array<uint8_t, 42> f{};
  std::memset(f.data(), 0xff, 6);                      // to: broadcast
  std::memcpy(f.data() + 6, sender_mac.data(), 6);     // from
  f[12] = 0x08, f[13] = 0x06;                          // ARP
  uint8_t* a = f.data() + kEtherHeader;
  a[0] = 0, a[1] = 1, a[2] = 0x08, a[3] = 0, a[4] = 6, a[5] = 4;  // Ethernet, IPv4, 6, 4
  a[6] = 0, a[7] = 1;                                             // request
  std::memcpy(a + 8, sender_mac.data(), 6);
  // a[14..17]: sender IP 0.0.0.0 (a probe); a[18..23]: target MAC zero.
  a[24] = static_cast<uint8_t>(target >> 24), a[25] = static_cast<uint8_t>(target >> 16);
  a[26] = static_cast<uint8_t>(target >> 8), a[27] = static_cast<uint8_t>(target);
  return f;
}

std::optional<std::string> ArpConflict(const uint8_t* frame, size_t size, uint32_t target,
                                       const EtherAddress& own) {
  if (frame == nullptr || size < kEtherHeader + kArpIpv4) return std::nullopt;
  if (Be16(frame + 12) != ETH_P_ARP) return std::nullopt;
  const uint8_t* a = frame + kEtherHeader;
  if (Be16(a) != 1 || Be16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) return std::nullopt;
  const uint16_t op = Be16(a + 6);
  if (op != 1 && op != 2) return std::nullopt;
  if (std::memcmp(a + 8, own.data(), 6) == 0) return std::nullopt;
  if (Be32(a + 14) != target) return std::nullopt;
  return MacText(a + 8);
}

Result<std::vector<ProbeAnswer>> ProbeAddresses(const std::string& bridge,
                                                const std::vector<uint32_t>& targets) {
  std::vector<ProbeAnswer> answers;
  for (uint32_t t : targets) answers.push_back({t, std::nullopt});
  if (targets.empty()) return answers;
  const std::string what = "probing bridge " + bridge + " for addresses in use (ARP)";
  const unsigned index = ::if_nametoindex(bridge.c_str());
  if (index == 0) return Status::Unavailable(Errno(what + ": " + bridge));
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP)));
  if (!fd.valid()) {
    return Status::Unavailable(Errno(what + ": packet socket") +
                               (errno == EPERM ? "; ferryd needs CAP_NET_RAW" : ""));
  }
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ARP);
  at.sll_ifindex = static_cast<int>(index);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
    return Status::Unavailable(Errno(what + ": bind"));
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, bridge.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), SIOCGIFHWADDR, &ifr) != 0) {
    return Status::Unavailable(Errno(what + ": its MAC"));
  }
  EtherAddress own;
  std::memcpy(own.data(), ifr.ifr_hwaddr.sa_data, 6);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + kListen;
  int sent = 0;
  while (true) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    if (sent < kProbes && now >= start + sent * kProbeGap) {
      for (const ProbeAnswer& a : answers) {
        if (a.mac) continue;
        auto frame = ArpProbeFrame(own, a.address);
        sockaddr_ll to = at;
        to.sll_halen = 6;
        std::memset(to.sll_addr, 0xff, 6);
        if (::sendto(fd.get(), frame.data(), frame.size(), 0,
                     reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) {
          return Status::Unavailable(Errno(what + ": sending a probe"));
        }
      }
      ++sent;
      continue;
    }
    auto next = sent < kProbes ? std::min(deadline, start + sent * kProbeGap) : deadline;
    const int wait_ms = static_cast<int>(
        std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count());
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, std::max(wait_ms, 0)) < 0 && errno != EINTR) {
      return Status::Unavailable(Errno(what + ": poll"));
    }
    uint8_t buf[256];
    while (true) {
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n < 0) break;
      for (ProbeAnswer& a : answers) {
        if (!a.mac) a.mac = ArpConflict(buf, static_cast<size_t>(n), a.address, own);
      }
    }
  }
  return answers;
}

}  // namespace ferry::vm
