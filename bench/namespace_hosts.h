// Two hosts and a client made of network namespaces, for the migration benchmark: the same
// segment tests/harness/netns_hosts.h builds for the integration tests (its `ip` commands are
// copied here, so ferry-bench needs neither gtest nor the test harness).
//
//   client ns cl: eth0 10.77.0.200 ──veth──┐
//                                          switch ns sw: bridge br0
//   host ns h1: ferrybr0 10.77.0.1 ──veth──┤    (uplink in h1, port h1 in sw)
//   host ns h2: ferrybr0 10.77.0.2 ──veth──┘    (uplink in h2, port h2 in sw)
//
// The guests' taps hang off each host's ferrybr0. No link leaves these namespaces and nothing in
// them routes anywhere else: the benchmark's traffic stays on this segment and on loopback.
//
// Names are "fb<pid>sw", "fb<pid>h1", "fb<pid>h2", "fb<pid>cl", unique to the benchmark process.
// Teardown (also run by the destructor) kills whatever still runs inside them (only what the
// benchmark started can be there) and deletes them, which deletes their links. SweepStale
// removes what a benchmark that was SIGKILLed left behind. Needs root. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::bench {

// What a host's own network stack and its uplink have sent, read from the namespace's /proc.
struct HostTraffic {
  uint64_t uplink_tx_bytes = 0;  // every frame that left the host for the switch
  uint64_t ip_out_octets = 0;    // IP bytes the host's own stack sent (IpExt OutOctets)
};

class NamespaceHosts {
 public:
  static constexpr const char* kBridge = "ferrybr0";
  static constexpr const char* kUplink = "uplink";
  static constexpr const char* kClientAddress = "10.77.0.200";

  NamespaceHosts();
  ~NamespaceHosts();
  NamespaceHosts(const NamespaceHosts&) = delete;
  NamespaceHosts& operator=(const NamespaceHosts&) = delete;

  // Creates the switch, hosts h1 and h2 and the client; on failure leaves nothing behind.
  Status Build();
  // Kills every process inside the namespaces and deletes them. Idempotent; never fails.
  void Teardown();

  std::string Host(int i) const;  // namespace of host i (1 or 2)
  const std::string& Client() const { return client_; }
  static std::string HostAddress(int i);  // "10.77.0.<i>"

  // A persistent tap `name` on host i's ferrybr0, up, with a virtio-net header as ferryd makes
  // its taps (QEMU opens it by name, script=no). RemoveTap is Ok if it is gone already.
  Status AddTap(int host, const std::string& name);
  void RemoveTap(int host, const std::string& name);

  // Host i's counters, read in its namespace (/proc/thread-self/net/{dev,netstat}).
  Result<HostTraffic> Traffic(int host) const;

  // Deletes "fb<pid>..." namespaces whose benchmark process <pid> is gone.
  static void SweepStale();

 private:
  static void Delete(const std::string& ns);
  Status Ip(const std::vector<std::string>& args);

  std::string prefix_;
  std::string switch_;
  std::string client_;
  std::vector<std::string> created_;
  unsigned next_tap_mac_ = 1;  // port MACs of the bare sides' taps (AddTap)
};

}  // namespace ferry::bench
