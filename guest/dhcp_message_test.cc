#include "guest/dhcp_message.h"

#include <gtest/gtest.h>

#include <random>

#include "guest/fake_dhcp_messages.h"

namespace ferry::guest {
namespace {

using namespace dhcp_test;  // NOLINT(build/namespaces): the helpers are for these tests only

constexpr MacAddress kMac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr uint32_t kXid = 0x1234abcd;

DhcpServerMessage Decoded(std::string_view bytes) {
  auto decoded = DecodeDhcpServerMessage(bytes, kXid, kMac);
  if (auto* error = std::get_if<std::string>(&decoded)) {
    ADD_FAILURE() << "refused: " << *error;
    return {};
  }
  return std::get<DhcpServerMessage>(decoded);
}

// The reason a message is refused; empty (and a failure) when it is accepted.
std::string Refusal(std::string_view bytes) {
  auto decoded = DecodeDhcpServerMessage(bytes, kXid, kMac);
  if (auto* error = std::get_if<std::string>(&decoded)) return *error;
  ADD_FAILURE() << "accepted a message that should be refused";
  return "";
}

std::string Offer(const std::string& options) {
  return RawReply(kXid, kMac, kLeased, Option(53, "\x02") + Ipv4Option(54, kServer) + options);
}

TEST(DhcpClientMessageTest, DiscoverHasTheHeaderAndOptionsAServerNeeds) {
  DhcpClientMessage discover;
  discover.type = DhcpMessageType::kDiscover;
  discover.xid = kXid;
  discover.mac = kMac;
  discover.hostname = "web-2";
  discover.requested_ip = kKept;
  ClientMessage sent = ReadClientMessage(EncodeDhcpClientMessage(discover));
  EXPECT_EQ(sent.size, kDhcpClientMessageBytes);
  EXPECT_EQ(sent.op, 1);
  EXPECT_EQ(sent.htype, 1);
  EXPECT_EQ(sent.hlen, 6);
  EXPECT_EQ(sent.xid, kXid);
  EXPECT_EQ(sent.flags, 0x8000);  // broadcast: the client cannot take a unicast reply yet
  EXPECT_EQ(sent.chaddr, kMac);
  EXPECT_TRUE(sent.cookie);
  EXPECT_TRUE(sent.ended);
  EXPECT_EQ(sent.options, (std::map<uint8_t, std::string>{
                              {53, "\x01"},
                              {61, std::string("\x01\x52\x54\x00\xab\xcd\xef", 7)},
                              {50, Ipv4Bytes(kKept)},
                              {12, "web-2"},
                              {55, std::string("\x01\x03\x06\x0f\x1c\x33")},
                          }));
}

TEST(DhcpClientMessageTest, RequestNamesTheServerAndLeavesOutWhatIsUnset) {
  DhcpClientMessage request;
  request.type = DhcpMessageType::kRequest;
  request.xid = kXid;
  request.mac = kMac;
  request.requested_ip = kLeased;
  request.server_id = kServer;
  ClientMessage sent = ReadClientMessage(EncodeDhcpClientMessage(request));
  EXPECT_EQ(sent.options.at(53), "\x03");
  EXPECT_EQ(sent.options.at(50), Ipv4Bytes(kLeased));
  EXPECT_EQ(sent.options.at(54), Ipv4Bytes(kServer));
  EXPECT_EQ(sent.options.count(12), 0u);  // no hostname

  DhcpClientMessage bare = request;
  bare.requested_ip.reset();
  bare.server_id.reset();
  bare.hostname = std::string(256, 'h');  // too long for an option: left out, not cut
  sent = ReadClientMessage(EncodeDhcpClientMessage(bare));
  EXPECT_EQ(sent.options.count(50), 0u);
  EXPECT_EQ(sent.options.count(54), 0u);
  EXPECT_EQ(sent.options.count(12), 0u);

  bare.hostname = std::string(255, 'h');  // the longest that fits still leaves room for the end
  sent = ReadClientMessage(EncodeDhcpClientMessage(bare));
  EXPECT_EQ(sent.options.at(12).size(), 255u);
  EXPECT_TRUE(sent.ended);
  EXPECT_EQ(sent.size, kDhcpClientMessageBytes);
}

TEST(DhcpServerMessageTest, DecodesWhatQemuUserNetworkingSends) {
  DhcpServerMessage offer = Decoded(SlirpReply(2, kXid, kMac));
  EXPECT_EQ(offer.type, DhcpMessageType::kOffer);
  EXPECT_EQ(offer.lease.address, kLeased);
  EXPECT_EQ(offer.lease.prefix_length, 24);
  EXPECT_EQ(offer.lease.router, kServer);
  EXPECT_EQ(offer.lease.dns_servers, std::vector<uint32_t>{kDns});
  EXPECT_EQ(offer.lease.server_id, kServer);
  EXPECT_EQ(offer.lease.lease_seconds, 86400u);
  EXPECT_EQ(offer.lease.domain, "");

  EXPECT_EQ(Decoded(SlirpReply(5, kXid, kMac)).type, DhcpMessageType::kAck);
  DhcpServerMessage nak = Decoded(SlirpReply(6, kXid, kMac));
  EXPECT_EQ(nak.type, DhcpMessageType::kNak);
  EXPECT_EQ(nak.lease.server_id, kServer);
}

TEST(DhcpServerMessageTest, ReadsListsDomainAndMessage) {
  std::string options = Ipv4Option(1, 0xfffff000) +
                        Option(3, Ipv4Bytes(0x0a000001) + Ipv4Bytes(0x0a000002)) +
                        Option(6, Ipv4Bytes(0x08080808) + Ipv4Bytes(0x01010101)) +
                        std::string(3, '\0') +  // pad bytes
                        Option(15, std::string("corp.example\0", 13)) +
                        Ipv4Option(3, 0x0a000099) +  // a second router option: the first counts
                        "\xff";
  DhcpServerMessage offer = Decoded(Offer(options));
  EXPECT_EQ(offer.lease.prefix_length, 20);
  EXPECT_EQ(offer.lease.router, 0x0a000001u);
  EXPECT_EQ(offer.lease.dns_servers, (std::vector<uint32_t>{0x08080808, 0x01010101}));
  EXPECT_EQ(offer.lease.domain, "corp.example");

  std::string nak =
      RawReply(kXid, kMac, 0, Option(53, "\x06") + Option(56, "bad\nrequest") + "\xff");
  EXPECT_EQ(Decoded(nak).message, "bad?request");
  std::string chatty =
      RawReply(kXid, kMac, 0, Option(53, "\x06") + Option(56, std::string(250, 'x')));
  EXPECT_EQ(Decoded(chatty).message.size(), 200u);
}

TEST(DhcpServerMessageTest, WithoutAnEndOptionTheBufferEndEndsTheOptions) {
  EXPECT_EQ(Decoded(Offer(Ipv4Option(3, kServer))).lease.router, kServer);
}

TEST(DhcpServerMessageTest, RepliesToOthersAreRefused) {
  std::string offer = SlirpReply(2, kXid, kMac);
  EXPECT_NE(Refusal(SlirpReply(2, kXid + 1, kMac)).find("not ours"), std::string::npos);
  MacAddress other = kMac;
  other[5] ^= 1;
  EXPECT_NE(Refusal(SlirpReply(2, kXid, other)).find("another client (52:54:00:ab:cd:ee)"),
            std::string::npos);
  std::string request = offer;
  request[0] = 1;
  EXPECT_NE(Refusal(request).find("not a BOOTP reply (op 1)"), std::string::npos);
  std::string token_ring = offer;
  token_ring[1] = 6;
  EXPECT_NE(Refusal(token_ring).find("htype 6"), std::string::npos);
  std::string long_hw = offer;
  long_hw[2] = 16;
  EXPECT_NE(Refusal(long_hw).find("hlen 16"), std::string::npos);
  std::string bootp = offer;
  bootp[236] = 0;
  EXPECT_NE(Refusal(bootp).find("magic cookie"), std::string::npos);
}

TEST(DhcpServerMessageTest, TruncatedMessagesAreRefusedOrReadOnlyAsFarAsTheyGo) {
  const std::string offer = SlirpReply(2, kXid, kMac);
  EXPECT_NE(Refusal("").find("0 bytes is shorter"), std::string::npos);
  EXPECT_NE(Refusal(offer.substr(0, 239)).find("239 bytes is shorter"), std::string::npos);
  EXPECT_NE(Refusal(offer.substr(0, 240)).find("without a DHCP message type"), std::string::npos);
  // Every cut inside the options: never read past the cut, and a cut option is refused.
  std::size_t end = offer.find('\xff', 240);
  ASSERT_NE(end, std::string::npos);
  for (std::size_t size = 241; size < end; ++size) {
    std::string cut = offer.substr(0, size);
    auto decoded = DecodeDhcpServerMessage(cut, kXid, kMac);
    if (auto* message = std::get_if<DhcpServerMessage>(&decoded)) {
      // Only a cut between two options leaves a valid message, with the options before it.
      EXPECT_EQ(message->type, DhcpMessageType::kOffer) << size;
    }
  }
  EXPECT_NE(Refusal(offer.substr(0, 242)).find("option 53 of 1 bytes runs past"),
            std::string::npos);
  EXPECT_NE(Refusal(offer.substr(0, 244)).find("option 54 has no length byte"), std::string::npos);
}

TEST(DhcpServerMessageTest, MaliciousOptionLengthsAreRefused) {
  // An option claiming more bytes than the message has.
  EXPECT_NE(
      Refusal(Offer(std::string("\x03\xff\x0a\x00", 4))).find("option 3 of 255 bytes runs past"),
      std::string::npos);
  EXPECT_NE(Refusal(Offer("\x06")).find("option 6 has no length byte"), std::string::npos);
  // Lengths that do not fit the option's kind.
  EXPECT_NE(Refusal(RawReply(kXid, kMac, kLeased, Option(53, "\x02\x02"))).find("option 53 has 2"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Option(1, "\xff\xff\xff"))).find("option 1 has 3 bytes, not 4"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Option(51, "\x01"))).find("option 51 has 1"), std::string::npos);
  EXPECT_NE(Refusal(Offer(Option(3, std::string("\x0a\x00\x02\x02\x0a\x00", 6))))
                .find("router option of 6 bytes"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Option(6, ""))).find("DNS server option of 0 bytes"), std::string::npos);
  EXPECT_NE(Refusal(RawReply(kXid, kMac, kLeased, Option(53, "") + "\xff")).find("option 53 has 0"),
            std::string::npos);
}

TEST(DhcpServerMessageTest, ValuesThatCannotBeAppliedAreRefused) {
  for (uint32_t address : {0u, 0xffffffffu, 0x7f000001u, 0xe0000001u}) {
    std::string offer = RawReply(kXid, kMac, address, Option(53, "\x02") + Ipv4Option(54, kServer));
    EXPECT_NE(Refusal(offer).find("not a unicast address"), std::string::npos)
        << FormatIpv4(address);
  }
  EXPECT_NE(Refusal(Offer(Ipv4Option(1, 0xff00ff00))).find("255.0.255.0 is not a prefix"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Ipv4Option(1, 0))).find("0.0.0.0 is not a prefix"), std::string::npos);
  EXPECT_NE(Refusal(Offer(Ipv4Option(3, 0))).find("router 0.0.0.0 is not a unicast"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Ipv4Option(6, 0xffffffff))).find("DNS server 255.255.255.255"),
            std::string::npos);
  // The domain goes into /etc/resolv.conf; a newline would let the server add lines.
  EXPECT_NE(Refusal(Offer(Option(15, "ex.com\nnameserver 6.6.6.6"))).find("domain"),
            std::string::npos);
  EXPECT_NE(Refusal(Offer(Option(15, std::string(1, '\0')))).find("domain"), std::string::npos);
  // An offer must say whose it is: the request names that server.
  std::string anonymous = RawReply(kXid, kMac, kLeased, Option(53, "\x02") + "\xff");
  EXPECT_NE(Refusal(anonymous).find("without a server identifier"), std::string::npos);
  // An ack without one is taken (the client knows whom it asked).
  std::string ack = RawReply(kXid, kMac, kLeased, Option(53, "\x05") + "\xff");
  EXPECT_EQ(Decoded(ack).lease.server_id, 0u);
}

TEST(DhcpServerMessageTest, MessagesThatAreNoReplyAreRefused) {
  std::string no_type = RawReply(kXid, kMac, kLeased, Ipv4Option(54, kServer) + "\xff");
  EXPECT_NE(Refusal(no_type).find("without a DHCP message type"), std::string::npos);
  for (char type : {'\x01', '\x03', '\x04', '\x07', '\x08', '\x09', '\xff'}) {
    std::string message = RawReply(kXid, kMac, kLeased, Option(53, std::string(1, type)) + "\xff");
    EXPECT_NE(Refusal(message).find("no reply to a client"), std::string::npos) << int(type);
  }
}

TEST(DhcpServerMessageTest, RandomBytesNeverCrashOrReadOutOfBounds) {
  // Valid header and cookie, random options: only refusals and well-formed messages come out.
  std::mt19937 random(7);
  std::uniform_int_distribution<int> byte(0, 255), size(0, 80);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string options = Option(53, std::string(1, static_cast<char>(byte(random) % 7)));
    options += Ipv4Option(54, kServer);
    for (int n = size(random); n > 0; --n) options.push_back(static_cast<char>(byte(random)));
    auto decoded = DecodeDhcpServerMessage(RawReply(kXid, kMac, kLeased, options), kXid, kMac);
    if (auto* message = std::get_if<DhcpServerMessage>(&decoded)) {
      ++accepted;
      EXPECT_GE(message->lease.prefix_length, 1);
      EXPECT_LE(message->lease.prefix_length, 32);
      for (char c : message->lease.domain) EXPECT_NE(c, '\n');
    }
  }
  EXPECT_GT(accepted, 0);  // the generator does make valid ones too
}

TEST(Ipv4TextTest, FormatsAndParses) {
  EXPECT_EQ(FormatIpv4(0x0a00020f), "10.0.2.15");
  EXPECT_EQ(FormatIpv4(0), "0.0.0.0");
  EXPECT_EQ(FormatIpv4(0xffffffff), "255.255.255.255");
  EXPECT_EQ(ParseIpv4("10.0.2.15"), 0x0a00020fu);
  EXPECT_EQ(ParseIpv4("10.0.2.15/24"), 0x0a00020fu);
  EXPECT_EQ(ParseIpv4("10.0.2"), std::nullopt);
  EXPECT_EQ(ParseIpv4("10.0.2.256"), std::nullopt);
  EXPECT_EQ(ParseIpv4(""), std::nullopt);
}

}  // namespace
}  // namespace ferry::guest
