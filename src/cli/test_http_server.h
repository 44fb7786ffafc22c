// Test-only: a real httplib::Server, as ferryd runs it, on a UNIX socket in a fresh temporary
// directory, for unit tests of the CLI's HTTP clients. Header-only so that httplib never ends up
// in the ferry_client library; include it only from *_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace ferry::cli {

// A fresh directory under /tmp; the caller removes it.
inline std::string MakeTempDir() {
  std::string dir = "/tmp/ferry-http-test-XXXXXX";
  EXPECT_NE(::mkdtemp(dir.data()), nullptr);
  return dir;
}

// Counts the connections an httplib::Server accepts: it hands each one to its task queue.
class CountingTaskQueue : public httplib::TaskQueue {
 public:
  explicit CountingTaskQueue(std::atomic<int>& accepted) : accepted_(accepted), pool_(4) {}
  void enqueue(std::function<void()> fn) override {
    ++accepted_;
    pool_.enqueue(std::move(fn));
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  std::atomic<int>& accepted_;
  httplib::ThreadPool pool_;
};

// Fixture: tests add their routes to server_, call StartServer(), then connect to path_.
// connections_ counts the connections the server has accepted.
class UnixSocketHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    path_ = dir_ + "/api.sock";
    server_.set_address_family(AF_UNIX);
    server_.new_task_queue = [this] { return new CountingTaskQueue(connections_); };
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void StartServer() {
    ASSERT_TRUE(server_.bind_to_port(path_, 80));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the server runs; wait so that TearDown can always stop it. The
    // deadline bounds a broken test, never a passing one.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(server_.is_running());
  }

  std::string dir_;
  std::string path_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<int> connections_{0};
};

}  // namespace ferry::cli
