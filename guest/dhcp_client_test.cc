#include "guest/dhcp_client.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <vector>

#include "guest/dhcp_message.h"
#include "guest/fake_dhcp_messages.h"

namespace ferry::guest {
namespace {

using namespace dhcp_test;  // NOLINT(build/namespaces): the helpers are for these tests only
using std::chrono::milliseconds;

constexpr MacAddress kMac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
constexpr uint32_t kXid = 0x0badcafe;

// A transport on a fake clock: each message sent is given to `server`, whose answers arrive at
// once; waiting with nothing to read moves the clock to the deadline.
class ScriptedTransport : public DhcpTransport {
 public:
  using Server = std::function<std::vector<std::string>(const ClientMessage&)>;
  explicit ScriptedTransport(Server server) : server_(std::move(server)) {}

  std::chrono::steady_clock::time_point Now() override { return now_; }
  SystemError Send(std::string_view message) override {
    if (send_error) return send_error;
    sent.push_back(ReadClientMessage(message));
    sent_at.push_back(Elapsed());
    for (std::string& reply : server_(sent.back())) inbox_.push_back(std::move(reply));
    return std::nullopt;
  }
  Received Receive(std::chrono::steady_clock::time_point deadline) override {
    Received received;
    if (inbox_.empty()) {
      now_ = std::max(now_, deadline);
      return received;
    }
    received.datagram = std::move(inbox_.front());
    inbox_.pop_front();
    return received;
  }

  milliseconds Elapsed() const {
    return std::chrono::duration_cast<milliseconds>(now_ - std::chrono::steady_clock::time_point());
  }

  std::vector<ClientMessage> sent;
  std::vector<milliseconds> sent_at;
  SystemError send_error;

 private:
  Server server_;
  std::chrono::steady_clock::time_point now_;
  std::deque<std::string> inbox_;
};

DhcpExchangeConfig Config() {
  DhcpExchangeConfig config;
  config.iface = "eth0";
  config.mac = kMac;
  config.hostname = "web-2";
  config.requested_ip = kKept;
  config.xid = kXid;
  config.timeout = milliseconds(3000);
  return config;
}

uint8_t Type(const ClientMessage& message) {
  return static_cast<uint8_t>(message.options.at(53).at(0));
}

// QEMU's user networking with the kept address held by the parent's MAC: it offers the next
// address whatever is asked for, and acks a request for that one.
std::vector<std::string> Slirp(const ClientMessage& message) {
  if (Type(message) == 1) return {SlirpReply(2, message.xid, message.chaddr)};
  if (message.options.at(50) == Ipv4Bytes(kLeased)) {
    return {SlirpReply(5, message.xid, message.chaddr)};
  }
  return {SlirpReply(6, message.xid, message.chaddr)};
}

DhcpLease Leased(ScriptedTransport& transport) {
  auto result = ExchangeDhcp(transport, Config());
  if (auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << *error;
    return {};
  }
  return std::get<DhcpLease>(result);
}

std::string Failure(ScriptedTransport& transport) {
  auto result = ExchangeDhcp(transport, Config());
  if (auto* error = std::get_if<std::string>(&result)) return *error;
  ADD_FAILURE() << "got a lease";
  return "";
}

TEST(DhcpClientTest, DiscoverOfferRequestAck) {
  ScriptedTransport transport(Slirp);
  DhcpLease lease = Leased(transport);
  EXPECT_EQ(lease.address, kLeased);
  EXPECT_EQ(lease.prefix_length, 24);
  EXPECT_EQ(lease.router, kServer);
  EXPECT_EQ(lease.dns_servers, std::vector<uint32_t>{kDns});
  EXPECT_EQ(lease.server_id, kServer);
  ASSERT_EQ(transport.sent.size(), 2u);
  const ClientMessage& discover = transport.sent[0];
  EXPECT_EQ(Type(discover), 1);
  EXPECT_EQ(discover.xid, kXid);
  EXPECT_EQ(discover.chaddr, kMac);
  EXPECT_EQ(discover.options.at(50), Ipv4Bytes(kKept));  // the address it has, asked for again
  EXPECT_EQ(discover.options.at(12), "web-2");
  EXPECT_EQ(discover.options.count(54), 0u);
  const ClientMessage& request = transport.sent[1];
  EXPECT_EQ(Type(request), 3);
  EXPECT_EQ(request.xid, kXid);
  EXPECT_EQ(request.options.at(50), Ipv4Bytes(kLeased));  // what was offered
  EXPECT_EQ(request.options.at(54), Ipv4Bytes(kServer));
  EXPECT_EQ(transport.Elapsed(), milliseconds(0));  // nothing waited for
}

TEST(DhcpClientTest, RepliesThatAreNotOursAreSkipped) {
  MacAddress other = kMac;
  other[0] ^= 2;
  ScriptedTransport transport([&](const ClientMessage& message) -> std::vector<std::string> {
    std::vector<std::string> replies = {
        SlirpReply(2, message.xid + 1, message.chaddr),  // another transaction
        SlirpReply(2, message.xid, other),               // another client
        "garbage",
        SlirpReply(Type(message) == 1 ? 5 : 2, message.xid, message.chaddr),  // out of turn
    };
    for (std::string& reply : Slirp(message)) replies.push_back(reply);
    return replies;
  });
  EXPECT_EQ(Leased(transport).address, kLeased);
  EXPECT_EQ(transport.sent.size(), 2u);
}

TEST(DhcpClientTest, NoOfferIsResentThenTimesOutNamingTheInterface) {
  ScriptedTransport transport([](const ClientMessage&) { return std::vector<std::string>{}; });
  EXPECT_EQ(Failure(transport), "no DHCP offer on eth0 within 3000 ms");
  EXPECT_EQ(transport.sent_at,
            (std::vector<milliseconds>{milliseconds(0), milliseconds(500), milliseconds(1500)}));
  EXPECT_EQ(transport.Elapsed(), milliseconds(3000));
  for (const ClientMessage& message : transport.sent) EXPECT_EQ(message.xid, kXid);
}

TEST(DhcpClientTest, ALostDiscoverIsAnsweredWhenResent) {
  int discovers = 0;
  ScriptedTransport transport([&](const ClientMessage& message) {
    if (Type(message) == 1 && ++discovers == 1) return std::vector<std::string>{};
    return Slirp(message);
  });
  EXPECT_EQ(Leased(transport).address, kLeased);
  EXPECT_EQ(transport.sent_at,
            (std::vector<milliseconds>{milliseconds(0), milliseconds(500), milliseconds(500)}));
}

TEST(DhcpClientTest, SkippedRepliesAreQuotedWhenNoneFits) {
  ScriptedTransport transport([](const ClientMessage& message) {
    return std::vector<std::string>{SlirpReply(2, message.xid ^ 1, message.chaddr)};
  });
  std::string error = Failure(transport);
  EXPECT_NE(error.find("no DHCP offer on eth0 within 3000 ms (3 other replies skipped, the last: "
                       "for transaction 0x0badcaff, not ours (0x0badcafe))"),
            std::string::npos)
      << error;
}

TEST(DhcpClientTest, NakFailsNamingServerAddressAndInterface) {
  ScriptedTransport transport([](const ClientMessage& message) -> std::vector<std::string> {
    if (Type(message) == 1) return {SlirpReply(2, message.xid, message.chaddr)};
    return {RawReply(message.xid, message.chaddr, 0,
                     Option(53, "\x06") + Ipv4Option(54, kServer) + Option(56, "address in use"))};
  });
  EXPECT_EQ(Failure(transport),
            "DHCP server 10.0.2.2 refused 10.0.2.16 on eth0 (DHCPNAK): address in use");
}

TEST(DhcpClientTest, AnswersFromAnotherServerAreSkipped) {
  ScriptedTransport transport([](const ClientMessage& message) -> std::vector<std::string> {
    if (Type(message) == 1) return {SlirpReply(2, message.xid, message.chaddr)};
    return {RawReply(message.xid, message.chaddr, 0,
                     Option(53, "\x06") + Ipv4Option(54, 0x0a000009) + "\xff"),
            SlirpReply(5, message.xid, message.chaddr)};
  });
  EXPECT_EQ(Leased(transport).address, kLeased);
}

TEST(DhcpClientTest, NoAnswerToTheRequestTimesOut) {
  ScriptedTransport transport([](const ClientMessage& message) -> std::vector<std::string> {
    if (Type(message) == 1) return {SlirpReply(2, message.xid, message.chaddr)};
    return {};
  });
  EXPECT_EQ(Failure(transport),
            "no DHCP answer from 10.0.2.2 to the request for 10.0.2.16 on eth0 within 3000 ms");
  // One deadline for the whole exchange: the request is resent within what is left.
  EXPECT_EQ(transport.sent_at, (std::vector<milliseconds>{milliseconds(0), milliseconds(0),
                                                          milliseconds(500), milliseconds(1500)}));
  EXPECT_EQ(transport.Elapsed(), milliseconds(3000));
}

TEST(DhcpClientTest, AnAckWithoutServerIdGetsTheOffersOne) {
  ScriptedTransport transport([](const ClientMessage& message) -> std::vector<std::string> {
    if (Type(message) == 1) return {SlirpReply(2, message.xid, message.chaddr)};
    return {RawReply(message.xid, message.chaddr, kLeased, Option(53, "\x05") + "\xff")};
  });
  DhcpLease lease = Leased(transport);
  EXPECT_EQ(lease.server_id, kServer);
  EXPECT_EQ(lease.router, std::nullopt);  // the ack's options count, not the offer's
}

TEST(DhcpClientTest, SendErrorsNameTheMessageAndInterface) {
  ScriptedTransport transport(Slirp);
  transport.send_error = "sendto 255.255.255.255:67: Network is unreachable";
  EXPECT_EQ(Failure(transport),
            "sending a DHCPDISCOVER on eth0: sendto 255.255.255.255:67: Network is unreachable");
}

}  // namespace
}  // namespace ferry::guest
