// MigrationFleetFixture: two hosts (network namespaces on one segment, harness/netns_hosts.h),
// each with its own ferryd, peer port and fleet certificate: h1 (zone=a) and h2 (zone=b), owners
// alice and mallory, each host the other's peer. What the tests of live migration, hold sends,
// snapshot sends and hostile peers share.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/fleet.h"
#include "harness/netns_hosts.h"

namespace ferry::testing {

// The segment address of the VM a test creates, migrates or sends.
inline constexpr const char* kVmAddress = "10.77.0.10";

class MigrationFleetFixture : public NetnsFixture {
 protected:
  static constexpr const char* kPeerPort = "7400";

  int HostCount() const override { return 2; }
  void SetUp() override;

  // What a test adds once the fleet (h1, h2, alice, mallory) is made and before the ferryds
  // start: more hosts or policies in fleet_, files host i's ferryd flags name.
  virtual void BeforeStartingHosts() {}
  // Flags host i's ferryd gets beyond its peer port, fleet certificate and bridge.
  virtual std::vector<std::string> ExtraFerrydArgs(int i) const { return {}; }

  // Host i's ferryd with its peer port and fleet certificate; it dies at `fault_point` if given.
  void StartHost(int i, const std::string& fault_point = "");
  // Starts host i's ferryd again as soon as it died at its fault point (on another thread,
  // while `ferry migrate` waits); `restarted` says whether it did.
  std::thread RestartWhenDead(int i, std::atomic<bool>& restarted);
  std::vector<std::string> Vms(int host) { return Ferryd(host).VmNames(); }
  // Waits until host i holds exactly `names`.
  bool WaitForVms(int host, const std::vector<std::string>& names, std::chrono::seconds deadline);
  // Within 30 s, host i holds no VM and runs no QEMU (a failed transfer left nothing there).
  void ExpectNothingOn(int host);
  // Waits until a QEMU runs in host i's namespace; returns its pid or -1.
  pid_t WaitForQemuIn(int host, std::chrono::seconds deadline);

  // VM web on h1 with alice's policy (`rules`), on the segment at kVmAddress, redis filled with
  // kWebKeys keys (key:I = WebValue(I)).
  void CreateWeb(const std::vector<std::string>& rules = {});
  static constexpr int kWebKeys = 200;
  static std::string WebValue(int i) { return "value-" + std::to_string(i * 7919) + "-web"; }
  // The redis at `address` holds every key CreateWeb wrote, unchanged.
  void ExpectWebKeysAt(const std::string& address);

  std::optional<Fleet> fleet_;  // made in SetUp, once the test is known to run
};

}  // namespace ferry::testing
