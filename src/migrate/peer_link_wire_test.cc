// PeerLink against what a well-behaved peer never sends: hand-made frames inside a valid TLS
// session, and a TLS stream damaged on the wire.
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <atomic>
#include <future>
#include <thread>

#include "migrate/peer_connect.h"
#include "migrate/peer_link.h"
#include "migrate/peer_test_fleet.h"

namespace ferry::migrate {
namespace {

using Clock = std::chrono::steady_clock;

// A TLS client that bypasses PeerLink after the handshake, to put frames on the wire that a
// PeerLink would never send.
class RawTlsClient {
 public:
  RawTlsClient(const PeerTlsContext& context, uint16_t port) {
    fd_ = ConnectPlainTcp(port);
    EXPECT_GE(fd_, 0);
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    auto session = context.Handshake(fd_, PeerRole::kClient, "", Clock::now() + 10s, "raw");
    EXPECT_TRUE(session.ok()) << session.status().message();
    if (session.ok()) ssl_ = std::move(session->ssl);
  }
  ~RawTlsClient() {
    ssl_.reset();
    ::close(fd_);
  }
  bool ok() const { return ssl_ != nullptr; }

  void Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      size_t n = 0;
      ERR_clear_error();
      int ret = SSL_write_ex(ssl_.get(), bytes.data() + done, bytes.size() - done, &n);
      if (ret == 1) {
        done += n;
        continue;
      }
      int error = SSL_get_error(ssl_.get(), ret);
      ASSERT_TRUE(error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) << error;
      pollfd pfd{fd_, static_cast<short>(error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
      ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
    }
  }

 private:
  int fd_ = -1;
  SslPtr ssl_;
};

class PeerLinkRawFrameTest : public PeerPairTest {
 protected:
  // Connects a raw client and returns the server's link to it.
  void ConnectRaw() {
    client_context_ = TestFleet::Context(creds_a_);
    raw_ = std::make_unique<RawTlsClient>(*client_context_, listener_->port());
    ASSERT_TRUE(raw_->ok());
    server_ = recorder_.WaitForLink();
    ASSERT_NE(server_, nullptr);
  }
  std::shared_ptr<const PeerTlsContext> client_context_;
  std::unique_ptr<RawTlsClient> raw_;
};

TEST_F(PeerLinkRawFrameTest, AFrameArrivingInPiecesIsReassembledAcrossTimeouts) {
  ConnectRaw();
  std::string frame = EncodeFrame(FrameType::kControl, R"({"phase":"prepare"})");
  raw_->Write(frame.substr(0, 10));  // part of the header
  auto partial = server_->Receive(50ms);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().code(), Status::Code::kDeadlineExceeded);
  raw_->Write(frame.substr(10, 12));  // the rest of the header and part of the payload
  partial = server_->Receive(50ms);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().code(), Status::Code::kDeadlineExceeded);
  raw_->Write(frame.substr(22));
  auto message = server_->ReceiveMessage(10s);
  ASSERT_TRUE(message.ok()) << message.status().message();
  EXPECT_EQ((*message)["phase"], "prepare");
}

TEST_F(PeerLinkRawFrameTest, BadMagicEndsTheLink) {
  ConnectRaw();
  std::string frame = EncodeFrame(FrameType::kControl, "{}");
  frame[1] = 'X';
  raw_->Write(frame);
  auto got = server_->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(got.status().message(), "bad frame magic")) << got.status().message();
  EXPECT_TRUE(Contains(got.status().message(), "link from host-a")) << got.status().message();
  EXPECT_FALSE(server_->open());
  // The link stays ended with the first reason: the stream is out of step for good.
  EXPECT_TRUE(Contains(server_->Receive(10s).status().message(), "bad frame magic"));
}

TEST_F(PeerLinkRawFrameTest, BadChecksumEndsTheLinkAndDeliversNothing) {
  ConnectRaw();
  std::string frame = EncodeFrame(FrameType::kData, RandomBytes(3000, 9));
  frame[kFrameHeaderBytes + 1500] ^= 0x04;
  raw_->Write(frame);
  auto got = server_->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(got.status().message(), "CRC-32C")) << got.status().message();
  EXPECT_EQ(server_->counters().frames_received, 0u);
}

TEST_F(PeerLinkRawFrameTest, TooNewMajorVersionEndsTheLink) {
  ConnectRaw();
  std::string frame = EncodeFrame(FrameType::kControl, "{}");
  frame[4] = static_cast<char>(kFrameVersionMajor + 1);
  raw_->Write(frame);
  auto got = server_->ReceiveMessage(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(got.status().message(), "upgrade this agent")) << got.status().message();
  EXPECT_FALSE(server_->open());
}

TEST_F(PeerLinkRawFrameTest, OversizedFrameIsRefusedFromItsHeader) {
  ConnectRaw();
  std::string header = EncodeFrameHeader(FrameType::kData, "");
  uint32_t too_big = kMaxFramePayloadBytes + 1;
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((too_big >> (8 * i)) & 0xFF);
  raw_->Write(header);  // no payload follows: the refusal must not wait for one
  auto got = server_->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(got.status().message(), "limit")) << got.status().message();
}

TEST_F(PeerLinkRawFrameTest, UnexpectedFrameTypesAreProtocolErrors) {
  ConnectRaw();
  raw_->Write(EncodeFrame(FrameType::kData, "not a message"));
  auto got = server_->ReceiveMessage(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(got.status().message(), "expected a control message, got a data frame"))
      << got.status().message();
}

TEST_F(PeerLinkRawFrameTest, AcceptFrameAfterEstablishmentAndNonObjectJsonAreRefused) {
  ConnectRaw();
  raw_->Write(EncodeFrame(FrameType::kAccept, "{}"));
  auto got = server_->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(Contains(got.status().message(), "unexpected accept frame"))
      << got.status().message();

  auto second = std::make_unique<RawTlsClient>(*client_context_, listener_->port());
  ASSERT_TRUE(second->ok());
  auto link = recorder_.WaitForLink(1);
  ASSERT_NE(link, nullptr);
  second->Write(EncodeFrame(FrameType::kControl, "[1,2,3]"));
  auto message = link->ReceiveMessage(10s);
  ASSERT_FALSE(message.ok());
  EXPECT_TRUE(Contains(message.status().message(), "not a JSON object"))
      << message.status().message();
}

// A TCP proxy between a client and the listener that flips one bit in the client-to-server
// direction: in the middle of the body of the first TLS application-data record that starts at or
// after byte `flip_after` of that direction. It follows the TLS record headers (type, version,
// length) so the flip always lands in encrypted payload, where only the record's MAC can notice.
class BitFlippingProxy {
 public:
  BitFlippingProxy(uint16_t target_port, uint64_t flip_after)
      : target_port_(target_port), flip_after_(flip_after) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~BitFlippingProxy() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (int fd : {client_fd_.load(), server_fd_.load()}) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
    thread_.join();
    for (int fd : {listen_fd_, client_fd_.load(), server_fd_.load()}) {
      if (fd >= 0) ::close(fd);
    }
  }
  uint16_t port() const { return port_; }
  bool flipped() const { return flipped_.load(); }

 private:
  void Run() {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    client_fd_.store(client);
    int server = ConnectPlainTcp(target_port_);
    if (server < 0) {
      ::shutdown(client, SHUT_RDWR);
      return;
    }
    server_fd_.store(server);
    std::thread back([&] { Pump(server, client, false); });
    Pump(client, server, true);
    back.join();
  }

  // Copies until either side ends, then cuts both, as a real middlebox would.
  void Pump(int from, int to, bool flip) {
    char buffer[65536];
    while (true) {
      ssize_t n = ::read(from, buffer, sizeof buffer);
      if (n <= 0) break;
      if (flip) Inspect(buffer, static_cast<size_t>(n));
      size_t done = 0;
      while (done < static_cast<size_t>(n)) {
        ssize_t w = ::send(to, buffer + done, static_cast<size_t>(n) - done, MSG_NOSIGNAL);
        if (w <= 0) break;
        done += static_cast<size_t>(w);
      }
      if (done < static_cast<size_t>(n)) break;
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  void Inspect(char* bytes, size_t n) {
    for (size_t i = 0; i < n; ++i, ++offset_) {
      auto byte = static_cast<unsigned char>(bytes[i]);
      if (header_fill_ < 5) {
        header_[header_fill_++] = byte;
        if (header_fill_ == 5) {
          record_start_ = offset_ - 4;
          body_length_ = size_t{header_[3]} << 8 | header_[4];
          body_seen_ = 0;
          if (body_length_ == 0) header_fill_ = 0;
        }
        continue;
      }
      if (!flipped_.load() && header_[0] == 23 && record_start_ >= flip_after_ &&
          body_seen_ == body_length_ / 2) {
        bytes[i] = static_cast<char>(byte ^ 0x10);
        flipped_.store(true);
      }
      if (++body_seen_ == body_length_) header_fill_ = 0;
    }
  }

  const uint16_t target_port_;
  const uint64_t flip_after_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> client_fd_{-1};
  std::atomic<int> server_fd_{-1};
  std::atomic<bool> flipped_{false};
  std::thread thread_;
  // Record parser state, touched only by the client-to-server pump.
  uint64_t offset_ = 0;
  unsigned char header_[5] = {};
  size_t header_fill_ = 0;
  uint64_t record_start_ = 0;
  size_t body_length_ = 0;
  size_t body_seen_ = 0;
};

class PeerLinkWireTest : public PeerPairTest {};

TEST_F(PeerLinkWireTest, AFlippedBitOnTheWireEndsTheLinkWithATlsErrorAndDeliversNoBadData) {
  BitFlippingProxy proxy(listener_->port(), /*flip_after=*/1'000'000);
  auto connected =
      ConnectToPeer("127.0.0.1:" + std::to_string(proxy.port()), creds_a_, "host-b", 10s);
  ASSERT_TRUE(connected.ok()) << connected.status().message();
  client_ = std::move(connected).value();
  server_ = recorder_.WaitForLink();
  ASSERT_NE(server_, nullptr);
  client_->SetSendTimeout(20s);

  const std::string data = RandomBytes(4 * 1024 * 1024, 5);
  auto sending = std::async(std::launch::async, [&]() -> Status {
    for (size_t off = 0; off < data.size(); off += 64 * 1024) {
      FERRY_RETURN_IF_ERROR(client_->SendData(data.data() + off, 64 * 1024));
    }
    return client_->SendStreamEnd();
  });

  std::string received;
  Status end;
  while (true) {
    auto frame = server_->Receive(20s);
    if (!frame.ok()) {
      end = frame.status();
      break;
    }
    if (frame->type == FrameType::kStreamEnd) break;
    received += frame->payload;
  }
  EXPECT_TRUE(proxy.flipped());
  ASSERT_FALSE(end.ok()) << "the whole stream was delivered despite the flipped bit";
  EXPECT_EQ(end.code(), Status::Code::kCorruption) << end.message();
  EXPECT_TRUE(Contains(end.message(), "TLS error while receiving")) << end.message();
  EXPECT_TRUE(Contains(end.message(), "bad record mac")) << end.message();
  EXPECT_FALSE(server_->open());
  // Everything delivered before the damage is intact, and nothing after it was delivered.
  EXPECT_GE(received.size(), 900'000u);
  EXPECT_LT(received.size(), data.size());
  EXPECT_TRUE(received == data.substr(0, received.size())) << "delivered data differs";

  // The sender does not hang: it either finished into socket buffers before the damage was
  // found, or learns of the failure (the server's alert or the cut).
  ASSERT_EQ(sending.wait_for(30s), std::future_status::ready);
}

}  // namespace
}  // namespace ferry::migrate
