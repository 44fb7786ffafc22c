// TapDevice against the real kernel, in a network namespace of this test's own (so nothing on
// the host is touched). Needs root; skipped otherwise.
#include "vm/tap_device.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <map>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(TapDeviceNameTest, FyAndEightCharactersOfTheVmId) {
  EXPECT_EQ(TapDevice::NameFor("0123456789abcdef"), "fy01234567");
  EXPECT_EQ(TapDevice::NameFor("0123456789abcdef"), TapDevice::NameFor("0123456789abcdef"));
  EXPECT_NE(TapDevice::NameFor("0123456789abcdef"), TapDevice::NameFor("fedcba9876543210"));
  // Not hex (or too short): hashed, still "fy" + 8 characters.
  for (const std::string id : {"VM-ID-WITH-CAPS!", "abc", ""}) {
    std::string name = TapDevice::NameFor(id);
    EXPECT_EQ(name.size(), 10u) << id;
    EXPECT_THAT(name, StartsWith("fy"));
    EXPECT_LT(name.size(), size_t{IFNAMSIZ});
  }
  EXPECT_NE(TapDevice::NameFor("VM-ID-WITH-CAPS!"), TapDevice::NameFor("abc"));
  TapDevice tap = TapDevice::ForVm("0123456789abcdef", "br9");
  EXPECT_EQ(tap.name(), "fy01234567");
  EXPECT_EQ(tap.bridge(), "br9");
}

// Moves this thread into a new, empty network namespace for one test and back after it.
class TapDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and CAP_NET_ADMIN)";
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(original_, 0) << std::strerror(errno);
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
  }
  void TearDown() override {
    if (original_ < 0) return;
    // The namespace, and every interface in it, goes away with its last user: this thread.
    EXPECT_EQ(::setns(original_, CLONE_NEWNET), 0) << std::strerror(errno);
    ::close(original_);
  }

  // A Linux bridge, up (or down), through the bridge ioctls.
  void MakeBridge(const std::string& name, bool up = true) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sock, 0);
    char buf[IFNAMSIZ] = {};
    std::strncpy(buf, name.c_str(), IFNAMSIZ - 1);
    ASSERT_EQ(::ioctl(sock, SIOCBRADDBR, buf), 0) << std::strerror(errno);
    if (up) {
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
      ASSERT_EQ(::ioctl(sock, SIOCGIFFLAGS, &ifr), 0);
      ifr.ifr_flags |= IFF_UP;
      ASSERT_EQ(::ioctl(sock, SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
    }
    ::close(sock);
  }

  static unsigned Flags(const std::string& name) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    unsigned flags = ::ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 ? ifr.ifr_flags : 0;
    ::close(sock);
    return flags;
  }

  static std::array<uint8_t, 6> Mac(const std::string& name) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    std::array<uint8_t, 6> mac{};
    if (::ioctl(sock, SIOCGIFHWADDR, &ifr) == 0) std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    ::close(sock);
    return mac;
  }

  int original_ = -1;
};

TEST_F(TapDeviceTest, CreateAttachesAnUpTapToTheBridgeAndRemoveDeletesIt) {
  MakeBridge("ferrybr0");
  TapDevice tap("fy01234567", "ferrybr0");
  EXPECT_FALSE(tap.Exists());
  Status st = tap.Create();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(tap.Exists());
  EXPECT_EQ(*tap.AttachedBridge(), "ferrybr0");
  EXPECT_TRUE(Flags("fy01234567") & IFF_UP);

  // QEMU opens it by name with the flags it asks for; the tap must take a second opener then
  // (persistent, not owned by a process), with a virtio-net header.
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "fy01234567", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  EXPECT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0) << std::strerror(errno);
  ifreq got{};
  ASSERT_EQ(::ioctl(fd, TUNGETIFF, &got), 0);
  EXPECT_TRUE(got.ifr_flags & IFF_TAP);
  EXPECT_TRUE(got.ifr_flags & IFF_VNET_HDR);
  EXPECT_TRUE(got.ifr_flags & IFF_PERSIST) << "the tap must outlive whoever opened it";
  ::close(fd);
  EXPECT_TRUE(tap.Exists()) << "closing QEMU's descriptor must not remove the tap";

  ASSERT_TRUE(tap.Remove().ok());
  EXPECT_FALSE(tap.Exists());
  EXPECT_TRUE(tap.Remove().ok()) << "removing a missing tap is not an error";
  EXPECT_EQ(tap.AttachedBridge().status().code(), Status::Code::kNotFound);
}

TEST_F(TapDeviceTest, TheAliasIsSetAndTunLinksAreListedWithTheirAliases) {
  MakeBridge("ferrybr0");
  const std::string alias = "ferryd /var/lib/ferry vm 0123456789abcdef";
  ASSERT_TRUE(TapDevice("fy01234567", "ferrybr0").Create(alias).ok());
  ASSERT_TRUE(TapDevice("fy89abcdef", "ferrybr0").Create().ok());
  // Not a tun/tap interface: never listed, whatever its name.
  ASSERT_EQ(std::system("ip link add fyfedcba98 type veth peer name fyfedcba99"), 0);
  std::vector<TunLink> links = TapDevice::ListTunLinks();
  std::map<std::string, std::string> by_name;
  for (const auto& l : links) by_name[l.name] = l.alias;
  EXPECT_EQ(by_name,
            (std::map<std::string, std::string>{{"fy01234567", alias}, {"fy89abcdef", ""}}));
}

TEST_F(TapDeviceTest, TapsComingAndGoingNeverChangeTheBridgesMac) {
  // The bridge holds the host's address on the segment: if its MAC followed its ports, peers
  // would lose the host until their ARP entries expired. As on a real host, the bridge has an
  // uplink (here a veth) besides the VMs' taps; its MAC is high, so that a tap with a random
  // MAC would be lower and taken by the bridge.
  MakeBridge("ferrybr0");
  ASSERT_EQ(std::system("ip link add uplink address fc:ff:ff:ff:ff:ff type veth peer name "
                        "uplink-peer && ip link set uplink master ferrybr0 up"),
            0);
  const std::array<uint8_t, 6> bridge_mac = Mac("ferrybr0");
  TapDevice first("fy01234567", "ferrybr0");
  ASSERT_TRUE(first.Create().ok());
  EXPECT_EQ(Mac("fy01234567"), first.PortMac());
  EXPECT_EQ(first.PortMac()[0], 0xfe) << "a port MAC from 0xfe is never the bridge's lowest";
  TapDevice second("fy89abcdef", "ferrybr0");
  ASSERT_TRUE(second.Create().ok());
  EXPECT_NE(second.PortMac(), first.PortMac());
  EXPECT_EQ(Mac("ferrybr0"), bridge_mac);
  ASSERT_TRUE(first.Remove().ok());
  EXPECT_EQ(Mac("ferrybr0"), bridge_mac);
  ASSERT_TRUE(second.Remove().ok());
}

TEST_F(TapDeviceTest, RemoveWorksWhileTheTapIsHeldOpen) {
  MakeBridge("ferrybr0");
  TapDevice tap("fyheld0000", "ferrybr0");
  ASSERT_TRUE(tap.Create().ok());
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "fyheld0000", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0);
  EXPECT_TRUE(tap.Remove().ok());
  EXPECT_FALSE(tap.Exists());
  ::close(fd);
}

TEST_F(TapDeviceTest, MissingBridgeIsRefusedWithWhatToDoAndLeavesNothing) {
  TapDevice tap("fy01234567", "ferrybr0");
  Status st = tap.Create();
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("bridge ferrybr0 does not exist on this host"));
  EXPECT_THAT(st.message(), HasSubstr("pass --bridge"));
  EXPECT_FALSE(tap.Exists());
  EXPECT_EQ(TapDevice::CheckBridge("ferrybr0").code(), Status::Code::kFailedPrecondition);
}

TEST_F(TapDeviceTest, ANonBridgeOrADownBridgeIsRefused) {
  Status lo = TapDevice::CheckBridge("lo");
  EXPECT_EQ(lo.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(lo.message(), HasSubstr("interface lo is not a bridge"));
  TapDevice on_lo("fy01234567", "lo");
  EXPECT_FALSE(on_lo.Create().ok());
  EXPECT_FALSE(on_lo.Exists());

  MakeBridge("brdown", /*up=*/false);
  Status down = TapDevice::CheckBridge("brdown");
  EXPECT_THAT(down.message(), HasSubstr("bridge brdown is down"));
  MakeBridge("brup");
  EXPECT_TRUE(TapDevice::CheckBridge("brup").ok());
}

TEST_F(TapDeviceTest, AnExistingInterfaceOfThatNameIsNotTakenOver) {
  MakeBridge("ferrybr0");
  MakeBridge("fy01234567");  // someone else's interface, by chance of the same name
  TapDevice tap("fy01234567", "ferrybr0");
  Status st = tap.Create();
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(st.message(), HasSubstr("tap fy01234567 on bridge ferrybr0"));
  EXPECT_EQ(TapDevice::CheckBridge("fy01234567").code(), Status::Code::kOk) << "left alone";
}

}  // namespace
}  // namespace ferry::vm
