#include "migrate/peer_link.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "migrate/peer_connect.h"
#include "migrate/peer_test_fleet.h"

namespace ferry::migrate {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

class PeerLinkTest : public PeerPairTest {};

TEST_F(PeerLinkTest, BothSidesLearnThePeerFromItsCertificate) {
  ConnectPair();
  crypto::HostIdentity a{"host-a", {{"zone", "a"}, {"rack", "r1"}}};
  crypto::HostIdentity b{"host-b", {{"zone", "b"}}};
  EXPECT_EQ(client_->peer(), b);
  EXPECT_EQ(server_->peer(), a);
  EXPECT_TRUE(Contains(client_->description(), "link to host-b (127.0.0.1:"))
      << client_->description();
  EXPECT_TRUE(Contains(server_->description(), "link from host-a (127.0.0.1:"))
      << server_->description();
  EXPECT_TRUE(client_->open());
  EXPECT_TRUE(server_->open());
  EXPECT_EQ(recorder_.reject_count(), 0u);
}

TEST_F(PeerLinkTest, ClientRefusesAServerThatIsNotTheExpectedHost) {
  auto link = ConnectToPeer(address(), creds_a_, "host-c", 10s);
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(link.status().message(), "expected host host-c")) << link.status().message();
  EXPECT_TRUE(Contains(link.status().message(), "says host host-b")) << link.status().message();

  // Without an expectation, any host of the fleet is fine.
  auto any = ConnectToPeer(address(), creds_a_, "", 10s);
  ASSERT_TRUE(any.ok()) << any.status().message();
  EXPECT_EQ((*any)->peer().host_id, "host-b");
}

TEST_F(PeerLinkTest, MessagesAndDataRoundTripIntact) {
  ConnectPair();
  const std::string data = RandomBytes(5 * 1024 * 1024 + 12345, 42);
  json hello = {{"phase", "begin"}, {"vm", "web-1"}, {"ram_bytes", 1u << 30}};
  // The sender runs on its own thread: socket buffers hold less than the data.
  auto sending = std::async(std::launch::async, [&]() -> Status {
    FERRY_RETURN_IF_ERROR(client_->SendMessage(hello));
    // Uneven writes, one bigger than a data frame, so SendData's splitting is exercised.
    size_t sizes[] = {1, 4095, 3 * PeerLink::kDataFrameBytes + 17, 0};
    size_t offset = 0;
    for (size_t n : sizes) {
      FERRY_RETURN_IF_ERROR(client_->SendData(data.data() + offset, n));
      offset += n;
    }
    FERRY_RETURN_IF_ERROR(client_->SendData(data.data() + offset, data.size() - offset));
    FERRY_RETURN_IF_ERROR(client_->SendStreamEnd());
    return client_->SendMessage({{"phase", "perform-done"}});
  });

  auto first = server_->ReceiveMessage(10s);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, hello);
  std::string received;
  size_t data_frames = 0;
  while (true) {
    auto frame = server_->Receive(10s);
    ASSERT_TRUE(frame.ok()) << frame.status().message();
    if (frame->type == FrameType::kStreamEnd) break;
    ASSERT_EQ(frame->type, FrameType::kData);
    EXPECT_LE(frame->payload.size(), PeerLink::kDataFrameBytes);
    received += frame->payload;
    ++data_frames;
  }
  EXPECT_TRUE(received == data) << "data differs: got " << received.size() << " bytes";
  EXPECT_GE(data_frames, 8u);
  auto last = server_->ReceiveMessage(10s);
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ((*last)["phase"], "perform-done");
  ASSERT_EQ(sending.wait_for(10s), std::future_status::ready);
  Status sent = sending.get();
  ASSERT_TRUE(sent.ok()) << sent.message();

  // The server's reply travels the other way.
  ASSERT_TRUE(server_->SendMessage({{"phase", "finish"}, {"ok", true}}).ok());
  auto reply = client_->ReceiveMessage(10s);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ((*reply)["phase"], "finish");

  // Both ends have read everything the other wrote, so the wire counters agree exactly.
  PeerLink::Counters c = client_->counters();
  PeerLink::Counters s = server_->counters();
  EXPECT_EQ(c.wire_bytes_sent, s.wire_bytes_received);
  EXPECT_EQ(s.wire_bytes_sent, c.wire_bytes_received);
  EXPECT_EQ(c.payload_bytes_sent, s.payload_bytes_received);
  EXPECT_EQ(c.frames_sent, s.frames_received);
  EXPECT_GT(c.payload_bytes_sent, data.size());
  EXPECT_GT(c.wire_bytes_sent, c.payload_bytes_sent);  // headers, TLS records, handshake
  EXPECT_LT(c.wire_bytes_sent, c.payload_bytes_sent + data.size() / 50);  // overhead under 2%
}

// One sender and one receiver thread per side, all four at once: neither direction may hold up
// the other (a design that blocked in SSL_write while holding the SSL lock would deadlock here
// once both socket buffers are full).
TEST_F(PeerLinkTest, FullDuplexTransfersDoNotBlockEachOther) {
  ConnectPair();
  const std::string to_server = RandomBytes(16 * 1024 * 1024, 1);
  const std::string to_client = RandomBytes(16 * 1024 * 1024, 2);
  auto send = [](PeerLink* link, const std::string* data) {
    for (size_t off = 0; off < data->size(); off += 256 * 1024) {
      Status s =
          link->SendData(data->data() + off, std::min<size_t>(256 * 1024, data->size() - off));
      if (!s.ok()) return s;
    }
    return link->SendStreamEnd();
  };
  auto receive = [](PeerLink* link) -> Result<std::string> {
    std::string got;
    while (true) {
      FERRY_ASSIGN_OR_RETURN(Frame frame, link->Receive(20s));
      if (frame.type == FrameType::kStreamEnd) return got;
      got += frame.payload;
    }
  };
  auto client_sends = std::async(std::launch::async, send, client_.get(), &to_server);
  auto server_sends = std::async(std::launch::async, send, server_.get(), &to_client);
  auto client_gets = std::async(std::launch::async, receive, client_.get());
  auto server_gets = std::async(std::launch::async, receive, server_.get());
  for (auto* f : {&client_sends, &server_sends}) {
    ASSERT_EQ(f->wait_for(60s), std::future_status::ready) << "a sender is stuck";
    Status s = f->get();
    EXPECT_TRUE(s.ok()) << s.message();
  }
  ASSERT_EQ(client_gets.wait_for(60s), std::future_status::ready);
  ASSERT_EQ(server_gets.wait_for(60s), std::future_status::ready);
  auto at_client = client_gets.get();
  auto at_server = server_gets.get();
  ASSERT_TRUE(at_client.ok()) << at_client.status().message();
  ASSERT_TRUE(at_server.ok()) << at_server.status().message();
  EXPECT_TRUE(*at_client == to_client);
  EXPECT_TRUE(*at_server == to_server);
}

TEST_F(PeerLinkTest, ReceiveTimeoutLeavesTheLinkUsable) {
  ConnectPair();
  auto nothing = server_->Receive(50ms);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_TRUE(server_->open());
  ASSERT_TRUE(client_->SendMessage({{"after", "timeout"}}).ok());
  auto message = server_->ReceiveMessage(10s);
  ASSERT_TRUE(message.ok()) << message.status().message();
  EXPECT_EQ((*message)["after"], "timeout");
}

// Waits until thread `tid` of this process sits in poll(2), where PeerLink waits for the socket.
// Returns false when that cannot be seen (no /proc/.../syscall) or did not happen in time.
bool WaitUntilThreadPolls(pid_t tid, std::chrono::milliseconds timeout) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  std::string want = std::to_string(SYS_poll) + " ";
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return false;
    if (line.rfind(want, 0) == 0) return true;
    std::this_thread::yield();
  }
  return false;
}

TEST_F(PeerLinkTest, CloseFromAnotherThreadUnblocksAReceiver) {
  ConnectPair();
  std::atomic<pid_t> tid{0};
  auto receiving = std::async(std::launch::async, [&] {
    tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    return server_->Receive(60s);
  });
  while (tid.load() == 0) std::this_thread::yield();
  // Best effort: make sure the receiver is really waiting before we close (see the helper).
  bool seen_waiting = WaitUntilThreadPolls(tid.load(), 10s);
  if (!seen_waiting) GTEST_LOG_(WARNING) << "could not observe the receiver waiting in poll()";
  server_->Close();
  ASSERT_EQ(receiving.wait_for(5s), std::future_status::ready) << "Close() did not unblock";
  auto result = receiving.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(result.status().message(), "closed by this agent"))
      << result.status().message();
  EXPECT_FALSE(server_->open());
  // Later calls report the same end.
  EXPECT_TRUE(Contains(server_->SendMessage({{"x", 1}}).message(), "closed by this agent"));

  // The other side learns that the peer closed the link (TLS close_notify).
  auto at_client = client_->Receive(10s);
  ASSERT_FALSE(at_client.ok());
  EXPECT_EQ(at_client.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(at_client.status().message(), "the peer closed the link"))
      << at_client.status().message();
}

TEST_F(PeerLinkTest, CloseFromAnotherThreadUnblocksASenderTheyStoppedReadingFrom) {
  ConnectPair();
  const std::string chunk = RandomBytes(1024 * 1024, 3);
  std::atomic<pid_t> tid{0};
  auto sending = std::async(std::launch::async, [&]() -> Status {
    tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    // The server never reads: the socket buffers fill up and SendData waits.
    for (int i = 0; i < 1000; ++i) {
      FERRY_RETURN_IF_ERROR(client_->SendData(chunk.data(), chunk.size()));
    }
    return Status::Internal("1000 MiB went into socket buffers: the sender never blocked");
  });
  while (tid.load() == 0) std::this_thread::yield();
  if (!WaitUntilThreadPolls(tid.load(), 10s)) {
    GTEST_LOG_(WARNING) << "could not observe the sender waiting in poll()";
  }
  ASSERT_NE(sending.wait_for(0s), std::future_status::ready) << sending.get().message();
  client_->Close();
  ASSERT_EQ(sending.wait_for(5s), std::future_status::ready) << "Close() did not unblock";
  Status status = sending.get();
  EXPECT_EQ(status.code(), Status::Code::kUnavailable) << status.message();
  EXPECT_TRUE(Contains(status.message(), "closed by this agent")) << status.message();
}

// Reads exactly `n` bytes from blocking socket `fd`; fewer if it ends first.
std::string ReadExactly(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

TEST_F(PeerLinkTest, AHandOverEndsTlsInStepAndLeavesTheRawConnectionIntact) {
  ConnectPair();
  ASSERT_TRUE(client_->SendMessage({{"last", "frame"}}).ok());
  auto server_side = std::async(std::launch::async, [&]() -> Result<UniqueFd> {
    FERRY_RETURN_IF_ERROR(server_->ReceiveMessage(10s).status());
    return server_->HandOverSocket(10s);
  });
  auto client_fd = client_->HandOverSocket(10s);
  ASSERT_TRUE(client_fd.ok()) << client_fd.status().message();
  auto server_fd = server_side.get();
  ASSERT_TRUE(server_fd.ok()) << server_fd.status().message();
  // Bytes written right after the hand-over, both ways, arrive whole and first: no TLS record
  // and no byte of the other side was left behind or swallowed.
  const std::string there = RandomBytes(300000, 7);
  const std::string back = RandomBytes(12345, 8);
  auto writing = std::async(std::launch::async,
                            [&] { return ::write(client_fd->get(), there.data(), there.size()); });
  EXPECT_EQ(ReadExactly(server_fd->get(), there.size()), there);
  EXPECT_EQ(writing.get(), static_cast<ssize_t>(there.size()));
  ASSERT_EQ(::write(server_fd->get(), back.data(), back.size()), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(ReadExactly(client_fd->get(), back.size()), back);
  // The links are over; the sockets are the callers' (closing the links does not touch them).
  EXPECT_FALSE(client_->open());
  EXPECT_TRUE(Contains(client_->SendMessage({{"x", 1}}).message(), "handed over"));
  client_->Close();
  server_->Close();
  ASSERT_EQ(::write(client_fd->get(), "ok", 2), 2);
  EXPECT_EQ(ReadExactly(server_fd->get(), 2), "ok");
}

TEST_F(PeerLinkTest, AHandOverRefusesDataThatCameInsteadOfThePeersCloseNotify) {
  ConnectPair();
  // The client sends a data frame where the server expects the end of its TLS.
  const std::string stray = RandomBytes(1000, 9);
  ASSERT_TRUE(client_->SendData(stray.data(), stray.size()).ok());
  auto handed = server_->HandOverSocket(10s);
  ASSERT_FALSE(handed.ok());
  EXPECT_EQ(handed.status().code(), Status::Code::kCorruption) << handed.status().message();
  EXPECT_TRUE(Contains(handed.status().message(), "should have ended its TLS"))
      << handed.status().message();
  EXPECT_FALSE(server_->open());
}

TEST_F(PeerLinkTest, AHandOverThePeerNeverAnswersTimesOut) {
  ConnectPair();
  auto handed = server_->HandOverSocket(300ms);
  ASSERT_FALSE(handed.ok());
  EXPECT_EQ(handed.status().code(), Status::Code::kDeadlineExceeded) << handed.status().message();
  EXPECT_FALSE(server_->open());
}

}  // namespace
}  // namespace ferry::migrate
