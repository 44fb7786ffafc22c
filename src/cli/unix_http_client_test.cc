#include "cli/unix_http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cli/test_http_server.h"

namespace ferry::cli {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kPeerPatience{10000};  // bounds a broken test, never a passing one

// For clients of a scripted peer: a broken script fails the test in seconds, not in 60 s.
HttpTimeouts PeerTimeouts() {
  HttpTimeouts t;
  t.read = kPeerPatience;
  return t;
}

// UnixHttpClient against the server ferryd runs.
class UnixHttpClientTest : public UnixSocketHttpServerTest {};

TEST_F(UnixHttpClientTest, GetReturnsStatusAndBody) {
  server_.Get("/v1/host", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"host_id":"h1"})", "application/json");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/host");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"host_id":"h1"})");
}

TEST_F(UnixHttpClientTest, PostPutAndDeleteCarryBodiesAndStatusCodes) {
  auto echo = [](int status) {
    return [status](const httplib::Request& req, httplib::Response& res) {
      res.status = status;
      res.set_content(req.method + "|" + req.get_header_value("Content-Type") + "|" + req.body,
                      "text/plain");
    };
  };
  server_.Post("/v1/vms", echo(202));
  server_.Put("/v1/templates/t/pool", echo(200));
  server_.Delete("/v1/vms/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":{"code":"not_found","message":"no VM missing"}})",
                    "application/json");
  });
  StartServer();
  UnixHttpClient client(path_);

  auto post = client.Request("POST", "/v1/vms", R"({"name":"web-1"})", "application/json");
  ASSERT_TRUE(post.ok()) << post.status().message();
  EXPECT_EQ(post->status, 202);
  EXPECT_EQ(post->body, R"(POST|application/json|{"name":"web-1"})");

  auto put = client.Request("PUT", "/v1/templates/t/pool", R"({"size":3})", "application/json");
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(put->body, R"(PUT|application/json|{"size":3})");

  auto del = client.Request("DELETE", "/v1/vms/missing");
  ASSERT_TRUE(del.ok()) << del.status().message();
  EXPECT_EQ(del->status, 404);
  EXPECT_EQ(del->body, R"({"error":{"code":"not_found","message":"no VM missing"}})");

  auto unrouted = client.Request("GET", "/v1/nothing-here");
  ASSERT_TRUE(unrouted.ok()) << unrouted.status().message();
  EXPECT_EQ(unrouted->status, 404);
}

TEST_F(UnixHttpClientTest, LargeBodiesTravelBothWays) {
  // Larger than a UNIX socket's buffer, so sending waits for the server to read.
  const std::string big(3 * 1024 * 1024 + 7, 'x');
  server_.Post("/blob", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.body + "!", "application/octet-stream");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("POST", "/blob", big, "application/octet-stream");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->body.size(), big.size() + 1);
  EXPECT_EQ(res->body, big + "!");
}

TEST_F(UnixHttpClientTest, ChunkedReplyIsReassembled) {
  const std::vector<std::string> chunks = {"alpha,", "beta,", std::string(100000, 'c'), "end"};
  server_.Get("/v1/stream", [&chunks](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [&chunks](size_t, httplib::DataSink& sink) {
      for (const auto& c : chunks) sink.write(c.data(), c.size());
      sink.done();
      return true;
    });
  });
  server_.Get("/v1/after", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("after", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/stream");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, chunks[0] + chunks[1] + chunks[2] + chunks[3]);
  // The chunked body was consumed to its end: the next reply on the connection parses.
  auto after = client.Request("GET", "/v1/after");
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->body, "after");
  EXPECT_EQ(connections_.load(), 1);
}

TEST_F(UnixHttpClientTest, RequestsShareOneConnection) {
  server_.Get("/n", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("n", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Request("GET", "/n");
    ASSERT_TRUE(res.ok()) << res.status().message();
    EXPECT_EQ(res->body, "n");
  }
  EXPECT_EQ(connections_.load(), 1);
}

TEST_F(UnixHttpClientTest, ReconnectsAfterTheServerClosedTheConnection) {
  server_.set_keep_alive_max_count(1);  // one request per connection, then the server closes
  server_.Get("/n", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("n", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  for (int i = 0; i < 3; ++i) {
    auto res = client.Request("GET", "/n");
    ASSERT_TRUE(res.ok()) << "request " << i << ": " << res.status().message();
    EXPECT_EQ(res->body, "n");
  }
  EXPECT_EQ(connections_.load(), 3);
}

TEST_F(UnixHttpClientTest, PathIsEscapedSoNamesArriveAsTyped) {
  std::string seen;
  server_.Get(R"(/v1/vms/(.+))", [&seen](const httplib::Request& req, httplib::Response& res) {
    seen = req.matches[1];
    res.set_content("ok", "text/plain");
  });
  StartServer();
  UnixHttpClient client(path_);
  auto res = client.Request("GET", "/v1/vms/my vm;1,\xc3\xa9");
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(seen, "my vm;1,\xc3\xa9");
}

TEST(UnixHttpClientErrorTest, MissingSocketIsUnavailableAndNamesThePath) {
  std::string dir = MakeTempDir();
  const std::string path = dir + "/absent.sock";
  UnixHttpClient client(path);
  auto res = client.Request("GET", "/v1/host");
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(res.status().message(), "cannot connect to " + path + ": No such file or directory");
  ::rmdir(dir.c_str());
}

// The server end of a UNIX socket, scripted by hand in a thread, for replies httplib never sends.
class RawHttpPeer {
 public:
  explicit RawHttpPeer(int backlog = 4) {
    dir_ = MakeTempDir();
    path_ = dir_ + "/raw.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, backlog), 0);
  }
  ~RawHttpPeer() {
    Join();
    ::close(listen_fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  RawHttpPeer(const RawHttpPeer&) = delete;
  RawHttpPeer& operator=(const RawHttpPeer&) = delete;

  const std::string& path() const { return path_; }
  void Run(std::function<void(RawHttpPeer&)> script) {
    thread_ = std::thread([this, script = std::move(script)] { script(*this); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  // Runs the script most tests need: on one connection, answer one request with `reply`, then
  // wait for the client to close. The request it read is request() once Join() has returned.
  void ReplyOnceWith(std::string reply) {
    Run([reply = std::move(reply)](RawHttpPeer& p) {
      int fd = p.Accept();
      p.request_ = ReadRequest(fd);
      Write(fd, reply);
      WaitForClientClose(fd);
      ::close(fd);
    });
  }
  const std::string& request() const { return request_; }

  // The next connection, or -1 if none comes within kPeerPatience (the helpers below then fail
  // at once on -1).
  int Accept() {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kPeerPatience.count())) != 1) return -1;
    return ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }
  // Whether a connection waits to be accepted right now.
  bool HasPendingConnection() const {
    pollfd p{listen_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  // One request's head and Content-Length body, or "" at EOF or after kPeerPatience.
  static std::string ReadRequest(int fd) {
    if (fd < 0) return "";
    std::string in;
    std::size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadSome(fd, in)) return "";
    }
    std::size_t length = 0;
    std::size_t cl = in.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) length = std::stoul(in.substr(cl + 16));
    while (in.size() < head_end + 4 + length) {
      if (!ReadSome(fd, in)) return "";
    }
    return in;
  }
  // Waits until the client closes `fd`; false if it does not within kPeerPatience.
  static bool WaitForClientClose(int fd) {
    if (fd < 0) return false;
    std::string ignored;
    while (ReadSome(fd, ignored)) {
    }
    pollfd p{fd, POLLIN, 0};
    char c;
    return ::poll(&p, 1, 0) == 1 && ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
  }
  static void Write(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  static bool ReadSome(int fd, std::string& in) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kPeerPatience.count())) != 1) return false;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  std::string dir_;
  std::string path_;
  int listen_fd_ = -1;
  std::thread thread_;
  std::string request_;  // written by ReplyOnceWith's script
};

// One request from a client of `peer` that is closed again before this returns.
Result<HttpResponse> RequestOnce(const RawHttpPeer& peer, const std::string& method = "GET",
                                 const std::string& path = "/a", const std::string& body = "",
                                 const std::string& content_type = "") {
  UnixHttpClient client(peer.path(), PeerTimeouts());
  return client.Request(method, path, body, content_type);
}

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
