#include "guest/guest_system.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "guest/dhcp_client.h"
#include "guest/dhcp_message.h"
#include "guest/netlink_route.h"

namespace ferry::guest {
namespace {

constexpr const char* kUrandom = "/dev/urandom";

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

SystemError WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("write " + path);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

ifreq InterfaceRequest(const std::string& iface) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  return ifr;
}

// Calls `each` with every address of `family` (AF_INET, AF_INET6) that `iface` has, in the
// kernel's order (an interface's primary address first). An alias label ("eth0:1") is another
// name for the same interface's address and is not `iface`.
template <typename Each>
void ForEachAddress(const std::string& iface, int family, Each each) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == family && iface == a->ifa_name) {
      each(*a);
    }
  }
  freeifaddrs(list);
}

class LinuxGuestSystem : public GuestSystem {
 public:
  std::optional<std::string> ReadFile(const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return out.str();
  }

  std::vector<std::string> ListDir(const std::string& path) override {
    std::vector<std::string> names;
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return names;
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string Hostname() override {
    utsname u{};
    if (uname(&u) != 0) return "";
    return u.nodename;
  }

  std::string KernelRelease() override {
    utsname u{};
    if (uname(&u) != 0) return "";
    return u.release;
  }

  bool IsInit() override { return getpid() == 1; }

  int64_t RealtimeNs() override {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }

  std::optional<std::string> ReadUrandom(std::size_t n) override {
    Fd fd(open(kUrandom, O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return std::nullopt;
    std::string bytes(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      ssize_t r = read(fd.get(), bytes.data() + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return std::nullopt;
      got += static_cast<std::size_t>(r);
    }
    return bytes;
  }

  std::vector<std::string> Ipv4Addresses(const std::string& iface) override {
    std::vector<std::string> addresses;
    ForEachAddress(iface, AF_INET, [&](const ifaddrs& a) {
      char text[INET_ADDRSTRLEN];
      const auto* addr = reinterpret_cast<const sockaddr_in*>(a.ifa_addr);
      if (inet_ntop(AF_INET, &addr->sin_addr, text, sizeof(text)) == nullptr) return;
      int prefix = 0;
      if (a.ifa_netmask != nullptr) {
        const auto* mask = reinterpret_cast<const sockaddr_in*>(a.ifa_netmask);
        prefix = __builtin_popcount(mask->sin_addr.s_addr);
      }
      addresses.push_back(std::string(text) + "/" + std::to_string(prefix));
    });
    return addresses;
  }

  std::vector<std::string> Ipv6LinkLocal(const std::string& iface) override {
    std::vector<std::string> addresses;
    ForEachAddress(iface, AF_INET6, [&](const ifaddrs& a) {
      const auto* addr = reinterpret_cast<const sockaddr_in6*>(a.ifa_addr);
      char text[INET6_ADDRSTRLEN];
      if (IN6_IS_ADDR_LINKLOCAL(&addr->sin6_addr) &&
          inet_ntop(AF_INET6, &addr->sin6_addr, text, sizeof(text)) != nullptr) {
        addresses.push_back(text);
      }
    });
    return addresses;
  }

  SystemError AddEntropyAndReseed(std::string_view bytes) override {
    Fd fd(open(kUrandom, O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) return Errno(std::string("open ") + kUrandom);
    // struct rand_pool_info ends in a flexible array of __u32.
    std::vector<uint32_t> buffer(2 + (bytes.size() + 3) / 4, 0);
    auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
    info->entropy_count = static_cast<int>(bytes.size() * 8);
    info->buf_size = static_cast<int>(bytes.size());
    std::memcpy(info->buf, bytes.data(), bytes.size());
    int rc = ioctl(fd.get(), RNDADDENTROPY, info);
    SystemError error;
    if (rc != 0) error = Errno(std::string("ioctl RNDADDENTROPY on ") + kUrandom);
    // The host's bytes are the new RNG state's seed; no copy of them stays behind.
    explicit_bzero(buffer.data(), buffer.size() * sizeof(uint32_t));
    if (error) return error;
    if (ioctl(fd.get(), RNDRESEEDCRNG) != 0) {
      return Errno(std::string("ioctl RNDRESEEDCRNG on ") + kUrandom);
    }
    return std::nullopt;
  }

  SystemError SetRealtimeNs(int64_t unix_ns) override {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(unix_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(unix_ns % 1'000'000'000);
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) return Errno("clock_settime(CLOCK_REALTIME)");
    return std::nullopt;
  }

  SystemError WriteFileAtomically(const std::string& path, std::string_view contents,
                                  unsigned mode) override {
    std::string tmp = path + ".ferry-tmp";
    unlink(tmp.c_str());  // a leftover from an interrupted write
    Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (fd.get() < 0) return Errno("create " + tmp);
    SystemError error = WriteAll(fd.get(), contents, tmp);
    if (!error && fchmod(fd.get(), mode) != 0) error = Errno("chmod " + tmp);  // despite umask
    if (!error && fsync(fd.get()) != 0) error = Errno("fsync " + tmp);
    if (!error && rename(tmp.c_str(), path.c_str()) != 0) error = Errno("rename " + tmp);
    if (error) unlink(tmp.c_str());
    return error;
  }

  SystemError WriteFileInPlace(const std::string& path, std::string_view contents) override {
    Fd fd(open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (fd.get() < 0) return Errno("open " + path);
    return WriteAll(fd.get(), contents, path);
  }

  SystemError RemoveFile(const std::string& path) override {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("remove " + path);
    return std::nullopt;
  }

  SystemError SetHostname(const std::string& name) override {
    if (sethostname(name.data(), name.size()) != 0) return Errno("sethostname");
    return std::nullopt;
  }

  SystemError SetMacAddress(const std::string& iface, const MacAddress& mac) override {
    Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) return Errno("socket for ioctls on " + iface);
    ifreq hw = InterfaceRequest(iface);
    hw.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(hw.ifr_hwaddr.sa_data, mac.data(), mac.size());
    // Live first: virtio-net (and most NICs) take a new MAC while up, which keeps the link, its
    // routes and its receive buffers; taking it down and up costs tens of milliseconds of cold
    // kernel code under emulation. A driver that cannot answers EBUSY, and gets the old way.
    if (ioctl(sock.get(), SIOCSIFHWADDR, &hw) == 0) return RenewLinkLocal(iface);
    if (errno != EBUSY) return Errno("SIOCSIFHWADDR on " + iface);
    ifreq flags = InterfaceRequest(iface);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &flags) != 0) return Errno("SIOCGIFFLAGS on " + iface);
    flags.ifr_flags &= ~IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &flags) != 0) return Errno("setting " + iface + " down");
    SystemError error;
    if (ioctl(sock.get(), SIOCSIFHWADDR, &hw) != 0) error = Errno("SIOCSIFHWADDR on " + iface);
    // Up again even when the change failed: the NIC must not be left down.
    flags.ifr_flags |= IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &flags) != 0 && !error) {
      error = Errno("setting " + iface + " up after the MAC change");
    }
    return error;
  }

  // A live MAC change leaves the IPv6 link-local address the kernel derived from the old MAC
  // (the parent's, shared by every clone of it). Switching IPv6 off and on for the interface
  // drops it and derives one from the new MAC, as bringing the link up would. Without IPv6 (no
  // such file, or switched off) there is nothing to renew.
  SystemError RenewLinkLocal(const std::string& iface) {
    const std::string knob = "/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6";
    auto now = ReadFile(knob);
    if (!now || TrimWhitespace(*now) != "0") return std::nullopt;
    if (auto error = WriteFileInPlace(knob, "1\n")) return error;
    return WriteFileInPlace(knob, "0\n");
  }

  std::variant<DhcpLease, std::string> DhcpExchange(const std::string& iface,
                                                    const DhcpLeaseQuery& query) override {
    // Drawn after the reset's rng step, so clones of one snapshot pick different ones.
    auto xid_bytes = ReadUrandom(sizeof(uint32_t));
    if (!xid_bytes) return std::string("reading a DHCP transaction id from ") + kUrandom;
    DhcpExchangeConfig config;
    std::memcpy(&config.xid, xid_bytes->data(), sizeof(config.xid));
    config.iface = iface;
    config.mac = query.mac;
    config.hostname = query.hostname;
    config.requested_ip = query.requested_ip;
    config.timeout = query.timeout;
    auto transport = OpenDhcpSocket(iface);
    if (auto* error = std::get_if<std::string>(&transport)) return *error;
    return ExchangeDhcp(*std::get<std::unique_ptr<DhcpTransport>>(transport), config);
  }

  SystemError AddIpv4Address(const std::string& iface, uint32_t address,
                             int prefix_length) override {
    return NetlinkAddIpv4Address(iface, address, prefix_length);
  }

  SystemError RemoveIpv4Address(const std::string& iface, uint32_t address,
                                int prefix_length) override {
    return NetlinkRemoveIpv4Address(iface, address, prefix_length);
  }

  SystemError AnnounceIpv4(const std::string& iface, const MacAddress& mac,
                           uint32_t address) override {
    const std::string what = "ARP announcement of " + FormatIpv4(address) + " on " + iface;
    const unsigned index = if_nametoindex(iface.c_str());
    if (index == 0) return Errno(what + ": if_nametoindex");
    Fd fd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
    if (fd.get() < 0) return Errno(what + ": socket(AF_PACKET)");
    // The ARP packet (RFC 826) after the Ethernet header, which the kernel adds (SOCK_DGRAM).
    uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1};  // Ethernet, IPv4, 6, 4, request
    const uint32_t be = htonl(address);
    std::memcpy(arp + 8, mac.data(), 6);
    std::memcpy(arp + 14, &be, 4);
    std::memset(arp + 18, 0, 6);
    std::memcpy(arp + 24, &be, 4);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = static_cast<int>(index);
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xff, 6);
    if (sendto(fd.get(), arp, sizeof(arp), 0, reinterpret_cast<const sockaddr*>(&to),
               sizeof(to)) != static_cast<ssize_t>(sizeof(arp))) {
      return Errno(what + ": sendto");
    }
    return std::nullopt;
  }

  SystemError ReplaceDefaultRoute(const std::string& iface, uint32_t gateway) override {
    return NetlinkReplaceDefaultRoute(iface, gateway);
  }

  ProgramRun RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        std::chrono::milliseconds timeout) override {
    return ferry::guest::RunProgram(argv, env, timeout);
  }
};

}  // namespace

std::unique_ptr<GuestSystem> NewLinuxGuestSystem() { return std::make_unique<LinuxGuestSystem>(); }

std::optional<long long> ParseUptimeMs(const std::string& proc_uptime) {
  // strtod rather than streams: no locale surprises, and it tells us where it stopped.
  const char* begin = proc_uptime.c_str();
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(begin, &end);
  if (end == begin || errno != 0 || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
  return static_cast<long long>(seconds * 1000.0);
}

std::string TrimWhitespace(const std::string& s) {
  const char* kSpace = " \t\r\n";
  std::size_t first = s.find_first_not_of(kSpace);
  if (first == std::string::npos) return "";
  std::size_t last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

}  // namespace ferry::guest
