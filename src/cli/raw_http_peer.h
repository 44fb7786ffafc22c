// A scripted HTTP peer on a UNIX socket, for the replies httplib never sends (unix_http_client
// tests): each test writes the bytes the server sends and reads what the client sent.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "cli/test_http_server.h"
#include "cli/unix_http_client.h"

namespace ferry::cli {

inline constexpr std::chrono::milliseconds kPeerPatience{
    10000};  // bounds a broken test, never a passing one

// For clients of a scripted peer: a broken script fails the test in seconds, not in 60 s.
inline HttpTimeouts PeerTimeouts() {
  HttpTimeouts t;
  t.read = kPeerPatience;
  return t;
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
inline Result<HttpResponse> RequestOnce(const RawHttpPeer& peer, const std::string& method = "GET",
                                        const std::string& path = "/a",
                                        const std::string& body = "",
                                        const std::string& content_type = "") {
  UnixHttpClient client(peer.path(), PeerTimeouts());
  return client.Request(method, path, body, content_type);
}

}  // namespace ferry::cli
