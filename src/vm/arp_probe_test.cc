#include "vm/arp_probe.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::vm {
namespace {

const EtherAddress kBridge = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
const EtherAddress kOther = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr uint32_t kTarget = 0x0a4d0015;  // 10.77.0.21

// What a Linux host that has kTarget answers to our probe: an ARP reply from kTarget.
std::vector<uint8_t> ReplyFrom(const EtherAddress& mac, uint32_t ip, uint16_t op = 2) {
  auto probe = ArpProbeFrame(kBridge, 0);
  std::vector<uint8_t> f(probe.begin(), probe.end());
  std::copy(mac.begin(), mac.end(), f.begin() + 6);
  f[14 + 7] = static_cast<uint8_t>(op);
  std::copy(mac.begin(), mac.end(), f.begin() + 14 + 8);
  f[14 + 14] = static_cast<uint8_t>(ip >> 24), f[14 + 15] = static_cast<uint8_t>(ip >> 16);
  f[14 + 16] = static_cast<uint8_t>(ip >> 8), f[14 + 17] = static_cast<uint8_t>(ip);
  return f;
}

TEST(ArpProbeTest, AProbeAsksForTheTargetFromNoAddress) {
  const auto f = ArpProbeFrame(kBridge, kTarget);
  const std::vector<uint8_t> expected = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06,  // eth
      0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,                          // Ethernet/IPv4, request
      0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0, 0, 0,                    // sender: us, 0.0.0.0
      0, 0, 0, 0, 0, 0, 10, 77, 0, 21};                                  // target: 10.77.0.21
  EXPECT_EQ(std::vector<uint8_t>(f.begin(), f.end()), expected);
}

TEST(ArpProbeTest, AReplyOrRequestFromTheTargetIsAConflict) {
  auto reply = ReplyFrom(kOther, kTarget);
  EXPECT_EQ(ArpConflict(reply.data(), reply.size(), kTarget, kBridge), "52:54:00:ab:cd:ef");
  // A gratuitous ARP (a request from the address) says the same.
  auto request = ReplyFrom(kOther, kTarget, 1);
  EXPECT_EQ(ArpConflict(request.data(), request.size(), kTarget, kBridge), "52:54:00:ab:cd:ef");
  // Padded to Ethernet's minimum, as it arrives.
  reply.resize(60, 0);
  EXPECT_TRUE(ArpConflict(reply.data(), reply.size(), kTarget, kBridge));
}

TEST(ArpProbeTest, OtherFramesAreNoConflict) {
  auto other_ip = ReplyFrom(kOther, kTarget + 1);
  EXPECT_FALSE(ArpConflict(other_ip.data(), other_ip.size(), kTarget, kBridge));
  // Our own probe, seen going out: its sender IP is 0 and its MAC ours.
  auto ours = ArpProbeFrame(kBridge, kTarget);
  EXPECT_FALSE(ArpConflict(ours.data(), ours.size(), kTarget, kBridge));
  auto from_us = ReplyFrom(kBridge, kTarget);
  EXPECT_FALSE(ArpConflict(from_us.data(), from_us.size(), kTarget, kBridge));
  // Another host probing for the same address (sender IP 0) is no owner.
  auto probe = ArpProbeFrame(kOther, kTarget);
  EXPECT_FALSE(ArpConflict(probe.data(), probe.size(), kTarget, kBridge));
  // Truncated, of another type, of another hardware, of another op, null.
  auto reply = ReplyFrom(kOther, kTarget);
  for (size_t n = 0; n < 42; ++n) EXPECT_FALSE(ArpConflict(reply.data(), n, kTarget, kBridge));
  auto ipv6 = reply;
  ipv6[12] = 0x86, ipv6[13] = 0xdd;
  EXPECT_FALSE(ArpConflict(ipv6.data(), ipv6.size(), kTarget, kBridge));
  auto hw = reply;
  hw[14 + 4] = 8;
  EXPECT_FALSE(ArpConflict(hw.data(), hw.size(), kTarget, kBridge));
  auto rarp = reply;
  rarp[14 + 7] = 3;
  EXPECT_FALSE(ArpConflict(rarp.data(), rarp.size(), kTarget, kBridge));
  EXPECT_FALSE(ArpConflict(nullptr, 60, kTarget, kBridge));
}

}  // namespace
}  // namespace ferry::vm
