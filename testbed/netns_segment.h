// A small datacenter on this machine: "hosts", a client and a switch made of network namespaces,
// all on one L2 segment, 10.77.0.0/24:
//
//   client ns cl: eth0 10.77.0.200 ──veth──┐
//                                          switch ns sw: bridge br0
//   host ns h1: ferrybr0 10.77.0.1 ──veth──┤    (uplink in h1, port h1 in sw)
//   host ns h2: ferrybr0 10.77.0.2 ──veth──┘    (uplink in h2, port h2 in sw)
//
// Why it exists: the integration tests (tests/harness/netns_hosts.h) and the migration benchmark
// (bench/harness/namespace_hosts.h) both need several hosts, each with its own ferryd or QEMU and a
// bridge its VMs' taps hang off, and a client that reaches the VMs over a network. Both build
// them here, the same way. No link leaves these namespaces and nothing in them routes anywhere
// else: the traffic stays on this segment and on loopback; nothing reaches another machine.
//
// Names are "<tag><pid>sw", "<tag><pid>h1", ..., "<tag><pid>cl": the tag says which kind of
// program owns the segment ("fy" the tests, "fb" the benchmark), the pid which process, so
// several may run at once. Teardown (also run by the destructor) kills whatever still runs inside
// the namespaces and deletes them, which deletes their links; SweepStale removes what an owner
// that died (SIGKILL, crash) left behind. Needs root. Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::testbed {

class NetnsSegment {
 public:
  static constexpr const char* kVmBridge = "ferrybr0";  // each host's bridge, with its address
  static constexpr const char* kUplink = "uplink";      // each host's veth to the switch
  static constexpr const char* kClientAddress = "10.77.0.200";
  static constexpr int kPrefix = 24;
  static constexpr int kMaxHosts = 9;

  // `tag`: a few letters, not digits, naming the kind of owner (see above).
  explicit NetnsSegment(const std::string& tag);
  ~NetnsSegment();
  NetnsSegment(const NetnsSegment&) = delete;
  NetnsSegment& operator=(const NetnsSegment&) = delete;

  // Creates the switch, `hosts` hosts (1..kMaxHosts) and the client, first deleting any of
  // these names still there. On failure returns what failed (the `ip` command and what it said)
  // and leaves nothing behind.
  Status Build(int hosts);
  // Kills every process inside the namespaces and deletes them. Idempotent; never fails.
  void Teardown();

  int hosts() const { return hosts_; }
  const std::string& Switch() const { return switch_; }
  const std::string& Client() const { return client_; }
  // Namespace of host `i`, 1-based.
  std::string Host(int i) const;
  // The address of host i's ferrybr0: "10.77.0.<i>".
  static std::string HostAddress(int i);

  // Deletes the "<tag><pid>..." namespaces whose process <pid> no longer exists, killing what
  // still runs inside them first.
  static void SweepStale(const std::string& tag);

 private:
  std::string prefix_;  // "<tag><pid>"
  std::string switch_;
  std::string client_;
  int hosts_ = 0;
  std::vector<std::string> created_;  // namespaces made by Build, deleted by Teardown
};

}  // namespace ferry::testbed
