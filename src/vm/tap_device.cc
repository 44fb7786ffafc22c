#include "vm/tap_device.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "core/unique_fd.h"

namespace ferry::vm {

namespace {

constexpr const char* kTunDevice = "/dev/net/tun";

std::string Errno(int err) { return std::strerror(err); }

// What rtnetlink says about one interface.
struct LinkInfo {
  int index = 0;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "tun", "veth", ... ("" for lo and the like)
  int master = 0;    // index of the bridge it is attached to, 0 if none
  unsigned flags = 0;
  unsigned mtu = 0;
  std::string alias;  // IFLA_IFALIAS
};

// One rtnetlink request (a struct ifinfomsg and attributes) and its answer.
class LinkRequest {
 public:
  LinkRequest(uint16_t type, uint16_t flags, int index) {
    buf_.resize(NLMSG_SPACE(sizeof(ifinfomsg)), 0);
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    h->nlmsg_seq = 1;
    auto* ifi = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(h));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
  }
  ifinfomsg& ifi() { return *reinterpret_cast<ifinfomsg*>(NLMSG_DATA(buf_.data())); }
  void AddU32(uint16_t type, uint32_t value) { AddBytes(type, &value, sizeof value); }
  void AddBytes(uint16_t type, const void* data, size_t size) {
    const size_t at = buf_.size();
    buf_.resize(at + RTA_SPACE(size), 0);
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(rta), data, size);
  }

  // Sends the request and waits for the kernel's acknowledgement. Returns 0 or the errno the
  // kernel answered with; a RTM_NEWLINK answer (to a RTM_GETLINK) is parsed into `info`.
  int Send(LinkInfo* info = nullptr) {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<uint32_t>(buf_.size());
    UniqueFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (sock.get() < 0) return errno;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(sock.get(), buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof kernel) < 0) {
      return errno;
    }
    std::vector<char> reply(64 * 1024);
    for (;;) {
      ssize_t n = ::recv(sock.get(), reply.data(), reply.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) return EPROTO;
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(reply.data()); NLMSG_OK(h, len);
           h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EPROTO;
          return -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        }
        if (h->nlmsg_type == RTM_NEWLINK && info != nullptr) Parse(h, *info);
      }
    }
  }

 private:
  static void Parse(nlmsghdr* h, LinkInfo& info) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
    auto* ifi = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(h));
    info.index = ifi->ifi_index;
    info.flags = ifi->ifi_flags;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      const size_t payload = RTA_PAYLOAD(a);
      if (a->rta_type == IFLA_MASTER && payload >= sizeof(uint32_t)) {
        info.master = static_cast<int>(*reinterpret_cast<uint32_t*>(RTA_DATA(a)));
      } else if (a->rta_type == IFLA_MTU && payload >= sizeof(uint32_t)) {
        info.mtu = *reinterpret_cast<uint32_t*>(RTA_DATA(a));
      } else if (a->rta_type == IFLA_IFALIAS) {
        const char* alias = static_cast<const char*>(RTA_DATA(a));
        info.alias.assign(alias, ::strnlen(alias, payload));
      } else if (a->rta_type == IFLA_LINKINFO) {
        int inner = static_cast<int>(payload);
        for (auto* b = reinterpret_cast<rtattr*>(RTA_DATA(a)); RTA_OK(b, inner);
             b = RTA_NEXT(b, inner)) {
          if (b->rta_type == IFLA_INFO_KIND) {
            const char* kind = static_cast<const char*>(RTA_DATA(b));
            info.kind.assign(kind, ::strnlen(kind, RTA_PAYLOAD(b)));
          }
        }
      }
    }
  }

  std::vector<char> buf_;
};

int IndexOf(const std::string& name) { return static_cast<int>(::if_nametoindex(name.c_str())); }

// nullopt when there is no interface of that name (or it vanished between the two calls).
std::optional<LinkInfo> QueryLink(const std::string& name) {
  int index = IndexOf(name);
  if (index == 0) return std::nullopt;
  LinkInfo info;
  LinkRequest req(RTM_GETLINK, 0, index);
  if (req.Send(&info) != 0 || info.index != index) return std::nullopt;
  return info;
}

// FNV-1a: a stable spread of an id that is not hex (ids are hex today; records stay readable).
std::string Hash8(const std::string& text) {
  uint32_t h = 2166136261u;
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  char out[9];
  std::snprintf(out, sizeof out, "%08x", h);
  return out;
}

}  // namespace

std::string TapDevice::NameFor(const std::string& vm_id) {
  bool hex = vm_id.size() >= 8;
  for (size_t i = 0; hex && i < 8; ++i) {
    const char c = vm_id[i];
    hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  // ids are 16 hex characters from the CSPRNG: their first 8 are as unique as any hash of them.
  return "fy" + (hex ? vm_id.substr(0, 8) : Hash8(vm_id));
}

std::array<uint8_t, 6> TapDevice::PortMac() const {
  std::array<uint8_t, 6> mac = {0xfe, 0, 0, 0, 0, 0};
  // FNV-1a of the name: distinct taps get distinct port MACs in practice.
  uint64_t h = 1469598103934665603ull;
  for (char c : name_) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  for (size_t i = 1; i < mac.size(); ++i) mac[i] = static_cast<uint8_t>(h >> (8 * i));
  return mac;
}

TapDevice TapDevice::ForVm(const std::string& vm_id, const std::string& bridge) {
  return TapDevice(NameFor(vm_id), bridge);
}

Status TapDevice::CheckBridge(const std::string& bridge) {
  auto info = QueryLink(bridge);
  if (!info) {
    return Status::FailedPrecondition("bridge " + bridge +
                                      " does not exist on this host; create it (ip link add " +
                                      bridge + " type bridge) or pass --bridge with one that does");
  }
  if (info->kind != "bridge") {
    return Status::FailedPrecondition(
        "interface " + bridge + " is not a bridge (" +
        (info->kind.empty() ? std::string("no link kind") : "kind " + info->kind) +
        "); pass --bridge with a Linux bridge");
  }
  if (!(info->flags & IFF_UP)) {
    return Status::FailedPrecondition("bridge " + bridge + " is down; bring it up (ip link set " +
                                      bridge + " up) and try again");
  }
  return Status::Ok();
}

Status TapDevice::Create(const std::string& alias, bool on_bridge) const {
  const std::string what = "tap " + name_ + " on bridge " + bridge_;
  if (name_.empty() || name_.size() >= IFNAMSIZ) {
    return Status::InvalidArgument(what + ": the name must be 1-" + std::to_string(IFNAMSIZ - 1) +
                                   " bytes");
  }
  FERRY_RETURN_IF_ERROR(CheckBridge(bridge_));
  if (IndexOf(name_) != 0) {
    return Status::AlreadyExists(what + ": an interface named " + name_ +
                                 " already exists on this host; remove it (ip link del " + name_ +
                                 ") if no VM uses it");
  }
  {
    UniqueFd tun(::open(kTunDevice, O_RDWR | O_CLOEXEC));
    if (tun.get() < 0) {
      const int err = errno;
      return Status::Unavailable(
          what + ": cannot open " + kTunDevice + ": " + Errno(err) +
          (err == ENOENT || err == ENODEV  ? "; load the tun module (modprobe tun)"
           : err == EACCES || err == EPERM ? "; ferryd needs root (CAP_NET_ADMIN) for tap "
                                             "networking"
                                           : ""));
    }
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    // IFF_TUN_EXCL: fail rather than take over an interface someone created meanwhile.
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
    if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) {
      const int err = errno;
      if (err == EBUSY || err == EEXIST) {
        return Status::AlreadyExists(what + ": an interface named " + name_ +
                                     " already exists on this host");
      }
      return Status::Unavailable(what + ": cannot create it (TUNSETIFF): " + Errno(err) +
                                 (err == EPERM ? "; ferryd needs root (CAP_NET_ADMIN)" : ""));
    }
    // Until TUNSETPERSIST succeeds, closing `tun` removes the interface again.
    if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0) {
      return Status::Unavailable(what +
                                 ": cannot make it persistent (TUNSETPERSIST): " + Errno(errno));
    }
  }
  // From here a failure must remove the interface: it outlives this function.
  auto undo = [&](Status st) {
    Remove();
    return st;
  };
  auto bridge = QueryLink(bridge_);
  const int index = IndexOf(name_);
  if (!bridge || index == 0) {
    return undo(Status::Unavailable(what + ": " + (bridge ? name_ : bridge_) +
                                    " vanished while the tap was being created"));
  }
  LinkRequest req(RTM_NEWLINK, 0, index);
  req.ifi().ifi_change = IFF_UP;
  req.ifi().ifi_flags = IFF_UP;
  // A Linux bridge without an address of its own takes the lowest MAC of its ports: a tap with
  // a random MAC joining or leaving would change the host's MAC on the segment, and peers would
  // send to the old one until their ARP entries expire (tens of seconds). A tap MAC that starts
  // with 0xfe is never the lowest (libvirt does the same); the rest comes from the name.
  const std::array<uint8_t, 6> mac = PortMac();
  req.AddBytes(IFLA_ADDRESS, mac.data(), mac.size());
  if (on_bridge) req.AddU32(IFLA_MASTER, static_cast<uint32_t>(bridge->index));
  // The bridge's MTU, so adding this port does not lower it for every other port.
  if (bridge->mtu != 0) req.AddU32(IFLA_MTU, bridge->mtu);
  if (!alias.empty()) req.AddBytes(IFLA_IFALIAS, alias.c_str(), alias.size() + 1);
  if (int err = req.Send(); err != 0) {
    return undo(Status::Unavailable(
        what + ": cannot attach it to the bridge and bring it up: " + Errno(err) +
        (err == EOPNOTSUPP ? "; is " + bridge_ + " a bridge?" : "")));
  }
  return Status::Ok();
}

Status TapDevice::AttachToBridge() const {
  const std::string what = "tap " + name_ + " on bridge " + bridge_;
  auto bridge = QueryLink(bridge_);
  const int index = IndexOf(name_);
  if (!bridge) return Status::Unavailable(what + ": bridge " + bridge_ + " does not exist");
  if (index == 0) return Status::NotFound(what + ": the tap does not exist");
  LinkRequest req(RTM_NEWLINK, 0, index);
  req.AddU32(IFLA_MASTER, static_cast<uint32_t>(bridge->index));
  if (int err = req.Send(); err != 0) {
    return Status::Unavailable(what + ": cannot attach it to the bridge: " + Errno(err));
  }
  return Status::Ok();
}

Result<UniqueFd> TapDevice::Open() const {
  const std::string what = "tap " + name_;
  UniqueFd tun(::open(kTunDevice, O_RDWR | O_CLOEXEC));
  if (!tun.valid()) {
    return Status::Unavailable(what + ": cannot open " + kTunDevice + ": " + Errno(errno));
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
  // The flags it was created with: a persistent tap attaches only a queue that matches them.
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (IndexOf(name_) == 0) {
    return Status::NotFound(what + " does not exist (it is made when its VM starts)");
  }
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) {
    return Status::Unavailable(what + ": cannot attach to it (TUNSETIFF): " + Errno(errno));
  }
  return tun;
}

Status TapDevice::Remove() const {
  const int index = IndexOf(name_);
  if (index == 0) return Status::Ok();
  LinkRequest req(RTM_DELLINK, 0, index);
  int err = req.Send();
  if (err == 0 || err == ENODEV) return Status::Ok();
  return Status::Unavailable("tap " + name_ + ": cannot delete it: " + Errno(err) +
                             "; remove it by hand (ip link del " + name_ + ")");
}

bool TapDevice::Exists() const { return IndexOf(name_) != 0; }

Result<std::string> TapDevice::AttachedBridge() const {
  auto info = QueryLink(name_);
  if (!info) return Status::NotFound("tap " + name_ + " does not exist on this host");
  if (info->master == 0) return std::string();
  char master[IF_NAMESIZE] = {};
  if (::if_indextoname(static_cast<unsigned>(info->master), master) == nullptr) {
    return Status::NotFound("tap " + name_ + ": its bridge (index " + std::to_string(info->master) +
                            ") vanished");
  }
  return std::string(master);
}

std::vector<TunLink> TapDevice::ListTunLinks() {
  std::vector<TunLink> links;
  struct if_nameindex* all = ::if_nameindex();
  if (all == nullptr) return links;
  for (struct if_nameindex* i = all; i->if_index != 0 && i->if_name != nullptr; ++i) {
    auto info = QueryLink(i->if_name);  // nullopt: it vanished meanwhile
    if (info && info->kind == "tun") links.push_back({i->if_name, info->alias});
  }
  ::if_freenameindex(all);
  return links;
}

}  // namespace ferry::vm
