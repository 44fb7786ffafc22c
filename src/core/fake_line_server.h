// Test-only: the server end of a UNIX stream socket in a fresh temporary directory, scripted by a
// unit test to play the peer of a JSON-lines client (a generic peer, QEMU's QMP, ferry-guest).
// Header-only so that it never ends up in a production library; include it only from *_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/fd_message.h"
#include "core/json_lines.h"

namespace ferry {

class FakeLineServer {
 public:
  // Listens on `<mkdtemp(dir_template)>/<socket_name>`; dir_template ends in "XXXXXX".
  FakeLineServer(const std::string& dir_template, const std::string& socket_name) {
    std::string dir = dir_template;
    EXPECT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    path_ = dir_ + "/" + socket_name;
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
  }
  ~FakeLineServer() {
    CloseClient();
    ::close(listen_fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  FakeLineServer(const FakeLineServer&) = delete;
  FakeLineServer& operator=(const FakeLineServer&) = delete;

  const std::string& path() const { return path_; }

  // Accepts the connection the client has made (Connect returns once it is queued).
  bool Accept() {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1) return false;
    client_fd_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    return client_fd_ >= 0;
  }
  void Write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(client_fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  void WriteJson(const nlohmann::json& message) { Write(message.dump() + "\n"); }
  // The next object the client sent, or nullopt after `timeout` or at end of stream.
  std::optional<nlohmann::json> ReadJson(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (lines_.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd pfd{client_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) != 1) {
        return std::nullopt;
      }
      char buffer[4096];
      ssize_t n = ::read(client_fd_, buffer, sizeof buffer);
      if (n <= 0) return std::nullopt;
      for (auto& line : framer_.Feed(std::string_view(buffer, static_cast<size_t>(n)))) {
        if (line.ok()) lines_.push_back(line.value());
      }
    }
    std::string line = lines_.front();
    lines_.pop_front();
    return nlohmann::json::parse(line);
  }
  // Reads what the client sent next with recvmsg; returns the descriptor passed with it
  // (SCM_RIGHTS) or -1, and appends the bytes to `bytes`.
  int ReadWithPassedFd(std::string& bytes) {
    pollfd pfd{client_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) != 1) return -1;
    char buffer[4096];
    FdMessage message(buffer, sizeof buffer);
    ssize_t n = ::recvmsg(client_fd_, &message.msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return -1;
    bytes.append(buffer, static_cast<size_t>(n));
    return message.PassedFd();
  }
  void CloseClient() {
    if (client_fd_ >= 0) ::close(client_fd_);
    client_fd_ = -1;
  }

 private:
  std::string dir_;
  std::string path_;
  int listen_fd_ = -1;
  int client_fd_ = -1;
  JsonLineFramer framer_;
  std::deque<std::string> lines_;
};

}  // namespace ferry
