// The integration tests' datacenter: the segment of testbed/netns_segment.h (shared with the
// migration benchmark), one L2 segment 10.77.0.0/24 with a switch, hosts h1..hN and a client:
//
//   client ns: eth0 10.77.0.200 ──veth──┐
//                                       switch ns: bridge br0
//   host ns h1: ferrybr0 10.77.0.1 ──veth──┤        (the VMs' taps hang off each ferrybr0)
//   host ns h2: ferrybr0 10.77.0.2 ──veth──┘
//
// Each "host" runs its own ferryd (NamespacedFerryd) with its VMs' taps on its ferrybr0; the
// bridge's address is where that host's ferryd peer port can listen. Traffic stays on the
// segment.
//
// Names are unique to the test process ("fy<pid>sw", "fy<pid>h1", ..., "fy<pid>cl"), so tests
// may run in parallel. Teardown (also run by the destructor, so a failed test cleans up) kills
// whatever still runs inside the namespaces (ferryd, QEMU) and deletes them, which deletes their
// links. SweepStale removes what a test process that died (SIGKILL, crash) left behind.
//
// Needs root. Not thread-safe.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/command.h"
#include "testbed/netns.h"
#include "testbed/netns_segment.h"

namespace ferry::testing {

// Build(hosts) (1..kMaxHosts), Teardown, Host(i), Client(), HostAddress(i) and the constants
// are the segment's.
class NetnsHosts : public testbed::NetnsSegment {
 public:
  NetnsHosts() : NetnsSegment(kTag) {}

  // argv that runs `argv` inside namespace `ns` (through `ip netns exec`, which execs in place:
  // the pid of the started process is the pid of the program).
  static std::vector<std::string> InNamespace(const std::string& ns,
                                              const std::vector<std::string>& argv) {
    return testbed::InNamespace(ns, argv);
  }
  // Runs argv inside `ns` and waits for it.
  static CommandResult RunIn(const std::string& ns, const std::vector<std::string>& argv);
  // Names of the interfaces in `ns` whose master is `bridge` ("" for: all interfaces).
  static std::vector<std::string> Links(const std::string& ns, const std::string& bridge = "");
  // Pids of the processes whose network namespace is `ns`.
  static std::vector<pid_t> PidsIn(const std::string& ns) { return testbed::PidsIn(ns); }

  // Deletes "fy<pid>..." namespaces whose test process <pid> no longer exists, killing what
  // still runs inside them first, and those tests' ferryd directories in /tmp and /dev/shm.
  static void SweepStale();

 private:
  static constexpr const char* kTag = "fy";
};

// One ferryd running inside a host namespace, with its own state and RAM directories and API
// socket (a UNIX socket: the ferry CLI reaches it from any network namespace). The destructor
// force-deletes its VMs, stops it and removes its directories.
class NamespacedFerryd {
 public:
  // REQUIRES: the default guest image is built.
  explicit NamespacedFerryd(std::string ns);
  ~NamespacedFerryd();
  NamespacedFerryd(const NamespacedFerryd&) = delete;
  NamespacedFerryd& operator=(const NamespacedFerryd&) = delete;

  // Starts ferryd inside the namespace and waits until its API answers (gtest failure if not).
  // With a `fault_point` (src/core/fault_point.h) ferryd kills itself when it reaches it.
  void Start(const std::vector<std::string>& extra_args = {}, const std::string& fault_point = "");
  void Kill();  // SIGKILL, as a crash would; its QEMUs keep running
  // Waits until ferryd ended by itself (a fault point) and reaps it; false after `timeout`.
  bool WaitExit(std::chrono::seconds timeout);
  void Stop();  // SIGTERM and wait

  // `ferry ARGS...` against this ferryd.
  CommandResult Ferry(const std::vector<std::string>& args);
  // `ferry ARGS... --json`, parsed; fails the test if the command fails.
  nlohmann::json FerryJson(const std::vector<std::string>& args);
  std::vector<std::string> VmNames();

  const std::string& ns() const { return ns_; }
  pid_t pid() const { return pid_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& ram_dir() const { return ram_dir_; }
  const std::string& socket() const { return socket_; }

 private:
  std::string ns_;
  std::string state_dir_;
  std::string ram_dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

// A test with a datacenter of HostCount() hosts, each with a ferryd made on first use. Skipped
// when not root.
class NetnsFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  virtual int HostCount() const { return 1; }

  // The ferryd of host i (1-based), created (not started) on first use.
  NamespacedFerryd& Ferryd(int i);
  // `redis-cli -h ADDRESS ARGS...` run in the client namespace, stdout without the newline.
  CommandResult RedisFromClient(const std::string& address, const std::vector<std::string>& args);

  NetnsHosts net_;
  std::vector<std::unique_ptr<NamespacedFerryd>> ferryds_;
};

}  // namespace ferry::testing
