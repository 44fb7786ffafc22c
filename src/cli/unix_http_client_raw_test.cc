// UnixHttpClient against a peer scripted byte by byte (raw_http_peer.h): the request it sends,
// replies httplib never sends, limits, timeouts and the one retry on a kept-alive connection.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cli/raw_http_peer.h"
#include "cli/unix_http_client.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

TEST(UnixHttpClientRawTest, SendsTheDocumentedRequest) {
  RawHttpPeer peer;
  peer.ReplyOnceWith("HTTP/1.1 201 Created\r\ncontent-LENGTH: 2\r\n\r\nok");
  auto res = RequestOnce(peer, "POST", "/v1/x", "{}", "application/json");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->body, "ok");
  peer.Join();
  EXPECT_EQ(peer.request(),
            "POST /v1/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
            "Content-Type: application/json\r\n\r\n{}");
}

TEST(UnixHttpClientRawTest, ReplyWithoutLengthIsReadToEofAndNotReused) {
  RawHttpPeer peer;
  int connections = 0;
  peer.Run([&connections](RawHttpPeer& p) {
    for (const char* body : {"first body", "second body"}) {
      int fd = p.Accept();
      if (fd < 0) return;
      ++connections;
      RawHttpPeer::ReadRequest(fd);
      RawHttpPeer::Write(fd,
                         std::string("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n") + body);
      ::close(fd);
    }
  });
  UnixHttpClient client(peer.path(), PeerTimeouts());
  auto first = client.Request("GET", "/a");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->body, "first body");
  auto second = client.Request("GET", "/b");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->body, "second body");
  peer.Join();
  EXPECT_EQ(connections, 2);
}

TEST(UnixHttpClientRawTest, ConnectionCloseIsHonoured) {
  RawHttpPeer peer;
  bool client_closed = false;
  peer.Run([&client_closed](RawHttpPeer& p) {
    int fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n1");
    // Keep our end open: the client must close on its own, and reconnect for the next request.
    client_closed = RawHttpPeer::WaitForClientClose(fd);
    ::close(fd);
    fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
    RawHttpPeer::WaitForClientClose(fd);
    ::close(fd);
  });
  {
    UnixHttpClient client(peer.path(), PeerTimeouts());
    auto first = client.Request("GET", "/a");
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_EQ(first->body, "1");
    auto second = client.Request("GET", "/b");
    ASSERT_TRUE(second.ok()) << second.status().message();
    EXPECT_EQ(second->body, "2");
  }
  peer.Join();
  EXPECT_TRUE(client_closed);
}

TEST(UnixHttpClientRawTest, ChunkExtensionsAndTrailersAreConsumed) {
  RawHttpPeer peer;
  peer.Run([](RawHttpPeer& p) {
    int fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd,
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n");
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    RawHttpPeer::WaitForClientClose(fd);
    ::close(fd);
  });
  {
    UnixHttpClient client(peer.path(), PeerTimeouts());
    auto res = client.Request("GET", "/a");
    ASSERT_TRUE(res.ok()) << res.status().message();
    EXPECT_EQ(res->body, "hello, world!!!");
    auto next = client.Request("GET", "/b");  // same connection: the peer accepts only one
    ASSERT_TRUE(next.ok()) << next.status().message();
    EXPECT_EQ(next->status, 204);
    EXPECT_EQ(next->body, "");
  }
  peer.Join();
}

// A reply whose header block is `size` bytes, blank line included.
std::string ReplyWithHeaderBlockOf(std::size_t size) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Filler: ";
  head += std::string(size - head.size() - 4, 'f') + "\r\n\r\n";
  return head + "ok";
}

TEST(UnixHttpClientRawTest, HeaderBlockOfExactly64KiBIsAccepted) {
  RawHttpPeer peer;
  peer.ReplyOnceWith(ReplyWithHeaderBlockOf(UnixHttpClient::kMaxHeaderBytes));
  auto res = RequestOnce(peer);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->body, "ok");
}

TEST(UnixHttpClientRawTest, OversizedHeaderBlockIsRefused) {
  RawHttpPeer peer;
  peer.ReplyOnceWith(ReplyWithHeaderBlockOf(UnixHttpClient::kMaxHeaderBytes + 1));
  auto res = RequestOnce(peer);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(res.status().message(), "reply headers from " + peer.path() + " exceed 64 KiB");
}

TEST(UnixHttpClientRawTest, OversizedBodyIsRefused) {
  RawHttpPeer peer;
  peer.ReplyOnceWith("HTTP/1.1 200 OK\r\nContent-Length: " +
                     std::to_string(UnixHttpClient::kMaxBodyBytes + 1) + "\r\n\r\n");
  auto res = RequestOnce(peer);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(res.status().message(), "reply body from " + peer.path() + " exceeds 64 MiB");
}

TEST(UnixHttpClientRawTest, MalformedStatusLineIsRefused) {
  RawHttpPeer peer;
  peer.ReplyOnceWith("HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n");
  auto res = RequestOnce(peer);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kCorruption);
  EXPECT_NE(res.status().message().find("bad status line"), std::string::npos);
}

TEST(UnixHttpClientRawTest, ServerThatNeverAnswersHitsTheReadTimeout) {
  RawHttpPeer peer;
  bool got_request = false;
  bool client_closed = false;
  peer.Run([&](RawHttpPeer& p) {
    int fd = p.Accept();
    got_request = !RawHttpPeer::ReadRequest(fd).empty();
    client_closed = RawHttpPeer::WaitForClientClose(fd);  // after its timeout, never an answer
    ::close(fd);
  });
  HttpTimeouts timeouts;
  timeouts.read = milliseconds(200);
  UnixHttpClient client(peer.path(), timeouts);
  const auto start = std::chrono::steady_clock::now();
  auto res = client.Request("GET", "/v1/operations/op-1?wait_ms=30000");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(res.status().message(), "no reply from " + peer.path() + " within 200 ms");
  EXPECT_GE(waited, milliseconds(200));
  peer.Join();
  EXPECT_TRUE(got_request);
  EXPECT_TRUE(client_closed);
}

TEST(UnixHttpClientRawTest, ConnectTimesOutWhileTheListenerIsFull) {
  RawHttpPeer peer(/*backlog=*/0);
  // With a backlog of 0, Linux queues one connection; ours fills the queue and nobody accepts.
  int filler = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, peer.path().c_str());
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  HttpTimeouts timeouts;
  timeouts.connect = milliseconds(200);
  UnixHttpClient client(peer.path(), timeouts);
  auto res = client.Request("GET", "/a");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(res.status().message(), peer.path() + " did not accept a connection within 200 ms");
  ::close(filler);
}

TEST(UnixHttpClientRawTest, DroppedKeptAliveConnectionIsRetriedOnce) {
  RawHttpPeer peer;
  std::vector<std::string> requests;
  peer.Run([&requests](RawHttpPeer& p) {
    int fd = p.Accept();
    requests.push_back(RawHttpPeer::ReadRequest(fd));
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
    // The second request arrives on the kept-alive connection; close it unanswered, as a server
    // whose idle timeout struck just then would.
    requests.push_back(RawHttpPeer::ReadRequest(fd));
    ::close(fd);
    fd = p.Accept();
    requests.push_back(RawHttpPeer::ReadRequest(fd));
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
    RawHttpPeer::WaitForClientClose(fd);
    ::close(fd);
  });
  {
    UnixHttpClient client(peer.path(), PeerTimeouts());
    auto first = client.Request("GET", "/a");
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_EQ(first->body, "first");
    auto second = client.Request("POST", "/b", "x", "text/plain");
    ASSERT_TRUE(second.ok()) << second.status().message();
    EXPECT_EQ(second->body, "second");
  }
  peer.Join();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1], requests[2]);
  EXPECT_EQ(requests[2].rfind("POST /b HTTP/1.1\r\n", 0), 0u);
}

TEST(UnixHttpClientRawTest, FailureOnAFreshConnectionIsNotRetried) {
  RawHttpPeer peer;
  peer.Run([](RawHttpPeer& p) {
    int fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    ::close(fd);  // unanswered
  });
  auto res = RequestOnce(peer, "POST", "/v1/vms", "{}", "application/json");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(res.status().message(), peer.path() + " closed the connection without replying");
  peer.Join();
  // Request() has returned: had it retried, the connection would be queued by now.
  EXPECT_FALSE(peer.HasPendingConnection());
}

TEST(UnixHttpClientRawTest, RetryThatFailsTooIsNotRetriedAgain) {
  RawHttpPeer peer;
  peer.Run([](RawHttpPeer& p) {
    int fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    RawHttpPeer::ReadRequest(fd);
    ::close(fd);
    fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    ::close(fd);
  });
  UnixHttpClient client(peer.path(), PeerTimeouts());
  ASSERT_TRUE(client.Request("GET", "/a").ok());
  auto res = client.Request("GET", "/b");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  peer.Join();
  EXPECT_FALSE(peer.HasPendingConnection());
}

TEST(UnixHttpClientRawTest, ReplyCutShortIsAnError) {
  RawHttpPeer peer;
  peer.Run([](RawHttpPeer& p) {
    int fd = p.Accept();
    RawHttpPeer::ReadRequest(fd);
    RawHttpPeer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    ::close(fd);
  });
  auto res = RequestOnce(peer);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(res.status().message(),
            peer.path() + " closed the connection in the middle of a reply");
  peer.Join();
}

}  // namespace
}  // namespace ferry::cli
