// Test-only helpers for peer-link tests: fleet CAs and enrolled hosts in a fresh temporary
// directory, a recorder for what a PeerListener hands out or refuses, small socket helpers, and a
// fixture with a connected pair of links.
// Header-only so it never ends up in a production library; include it only from *_test.cc.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/files.h"
#include "crypto/fleet_ca.h"
#include "crypto/host_credentials.h"
#include "migrate/peer_connect.h"
#include "migrate/peer_link.h"
#include "migrate/peer_listener.h"
#include "migrate/peer_tls.h"

namespace ferry::migrate {

using namespace std::chrono_literals;

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// CAs and host credentials under one temporary directory, removed at the end of the test.
class TestFleet {
 public:
  TestFleet() {
    std::string dir = "/tmp/ferry-migrate-XXXXXX";
    EXPECT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  ~TestFleet() { (void)RemoveAll(dir_); }
  TestFleet(const TestFleet&) = delete;
  TestFleet& operator=(const TestFleet&) = delete;

  const std::string& dir() const { return dir_; }
  std::string CaDir(const std::string& ca) const { return dir_ + "/ca-" + ca; }

  // Credentials for `host_id` signed by CA `ca` (created on first use).
  crypto::HostCredentials Enroll(const std::string& host_id,
                                 std::map<std::string, std::string> labels = {},
                                 const std::string& ca = "fleet") {
    if (!PathExists(CaDir(ca) + "/" + crypto::kCaKeyFile)) {
      Status made = crypto::InitFleetCa(CaDir(ca));
      EXPECT_TRUE(made.ok()) << made.message();
    }
    std::string host_dir = dir_ + "/host-" + host_id + "-" + ca;
    Status enrolled = crypto::EnrollHost(CaDir(ca), {host_id, std::move(labels)}, host_dir);
    EXPECT_TRUE(enrolled.ok()) << enrolled.message();
    auto loaded = crypto::LoadHostCredentials(host_dir);
    EXPECT_TRUE(loaded.ok()) << loaded.status().message();
    return loaded.ok() ? *loaded : crypto::HostCredentials{};
  }

  static std::shared_ptr<const PeerTlsContext> Context(const crypto::HostCredentials& creds) {
    auto context = PeerTlsContext::Create(creds);
    EXPECT_TRUE(context.ok()) << context.status().message();
    return context.ok() ? *context : nullptr;
  }

 private:
  std::string dir_;
};

// What a PeerListener handed out and refused, awaited by tests with a deadline.
class ListenerRecorder {
 public:
  // The handler to give the listener. By default it keeps the link (for the test to use);
  // `serve`, when set, runs on the connection thread instead.
  PeerListener::LinkHandler Handler(std::function<void(std::shared_ptr<PeerLink>)> serve = {}) {
    return [this, serve](std::shared_ptr<PeerLink> link) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        links_.push_back(link);
        cv_.notify_all();
      }
      if (serve) serve(std::move(link));
    };
  }
  PeerListener::RejectHandler RejectHandler() {
    return [this](const std::string& remote, const Status& why) {
      std::lock_guard<std::mutex> lock(mu_);
      rejects_.push_back(why);
      cv_.notify_all();
    };
  }

  std::shared_ptr<PeerLink> WaitForLink(size_t index = 0, std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, t, [&] { return links_.size() > index; })) return nullptr;
    return links_[index];
  }
  std::optional<Status> WaitForReject(size_t index = 0, std::chrono::milliseconds t = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, t, [&] { return rejects_.size() > index; })) return std::nullopt;
    return rejects_[index];
  }
  size_t link_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return links_.size();
  }
  size_t reject_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return rejects_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<PeerLink>> links_;
  std::vector<Status> rejects_;
};

// A plain (blocking) TCP connection to 127.0.0.1:port; -1 on failure.
inline int ConnectPlainTcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads from `fd` until EOF or error; false if neither came before the timeout.
inline bool ReadsToEnd(int fd, std::chrono::milliseconds timeout, std::string* got = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (true) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, PollMillisUntil(deadline)) != 1) return false;
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return true;
    if (got != nullptr) got->append(buffer, static_cast<size_t>(n));
  }
}

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

// Two hosts of one fleet, a listener for host-b, and a connected pair of links:
// client_ (host-a's link to host-b) and server_ (host-b's link from host-a).
class PeerPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    creds_a_ = fleet_.Enroll("host-a", {{"zone", "a"}, {"rack", "r1"}});
    creds_b_ = fleet_.Enroll("host-b", {{"zone", "b"}});
    auto listener = PeerListener::Start("127.0.0.1:0", TestFleet::Context(creds_b_),
                                        recorder_.Handler(), {}, recorder_.RejectHandler());
    ASSERT_TRUE(listener.ok()) << listener.status().message();
    listener_ = std::move(listener).value();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(listener_->port()); }

  void ConnectPair() {
    auto link = ConnectToPeer(address(), creds_a_, "host-b", 10s);
    ASSERT_TRUE(link.ok()) << link.status().message();
    client_ = std::move(link).value();
    server_ = recorder_.WaitForLink();
    ASSERT_NE(server_, nullptr);
  }

  TestFleet fleet_;
  crypto::HostCredentials creds_a_, creds_b_;
  ListenerRecorder recorder_;
  std::unique_ptr<PeerListener> listener_;
  std::unique_ptr<PeerLink> client_;
  std::shared_ptr<PeerLink> server_;
};

}  // namespace ferry::migrate
