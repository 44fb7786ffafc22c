// Two hosts and a client made of network namespaces, for the migration benchmark: the segment of
// testbed/netns_segment.h (shared with the integration tests) with hosts h1 and h2, named
// "fb<pid>sw", "fb<pid>h1", "fb<pid>h2", "fb<pid>cl". The guests' taps hang off each host's
// ferrybr0; the benchmark's traffic stays on this segment and on loopback.
//
// Adds what only the benchmark needs: bare QEMU's taps and a host's traffic counters. Teardown
// (also run by the destructor) kills whatever still runs inside the namespaces (only what the
// benchmark started can be there) and deletes them. Needs root. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "bench/harness/testbed.h"
#include "core/status.h"
#include "testbed/netns_segment.h"

namespace ferry::bench {

// What a host's own network stack and its uplink have sent, read from the namespace's /proc.
struct HostTraffic {
  uint64_t uplink_tx_bytes = 0;  // every frame that left the host for the switch
  uint64_t ip_out_octets = 0;    // IP bytes the host's own stack sent (IpExt OutOctets)
};

class NamespaceHosts : public testbed::NetnsSegment {
 public:
  static constexpr const char* kBridge = kVmBridge;

  NamespaceHosts() : NetnsSegment(kTag) {}

  // Creates the switch, hosts h1 and h2 and the client; on failure leaves nothing behind.
  Status Build();

  // A persistent tap `name` on host i's ferrybr0, up, with a virtio-net header as ferryd makes
  // its taps; a bare QEMU inherits a queue of it opened in the host's namespace
  // (BareLaunch::Open), as ferryd's QEMUs do. RemoveTap is Ok if it is gone already.
  Status AddTap(int host, const std::string& name);
  void RemoveTap(int host, const std::string& name);

  // Host i's counters, read in its namespace (/proc/thread-self/net/{dev,netstat}).
  Result<HostTraffic> Traffic(int host) const;

  // Deletes "fb<pid>..." namespaces whose benchmark process <pid> is gone.
  static void SweepStale() { NetnsSegment::SweepStale(kTag); }

 private:
  static constexpr const char* kTag = "fb";
  unsigned next_tap_mac_ = 1;  // port MACs of the bare sides' taps (AddTap)
};

}  // namespace ferry::bench
