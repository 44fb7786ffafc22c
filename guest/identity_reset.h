// IdentityReset: makes a cloned guest its own machine. A clone resumes from its parent's memory
// with the parent's RNG state, clock, machine-id, hostname, MAC, SSH host keys and DHCP lease;
// ferryd sends a CloneIdentity right after restore and reports the clone ready only once this
// has succeeded. The steps run in this order, each timed (the last two side by side):
//
//   rng         the host's entropy into the kernel pool, then a CRNG reseed, first, so that
//               everything after (the SSH key above all) draws from the clone's own state
//   clock       CLOCK_REALTIME from the host
//   machine_id  /etc/machine-id
//   hostname    sethostname(), /etc/hostname, the 127.0.1.1 line of /etc/hosts
//   mac         the NIC's MAC (SIOCSIFHWADDR, the NIC down and up around it)
//   ssh_keys    the dropbear host keys deleted, a new ed25519 key made
//   dhcp        ferry-guest's own DHCP client asks for a lease for the new MAC and applies it
//               through netlink and /etc/resolv.conf, starting no program (on tap networking,
//               with ferry.ip= on the kernel command line: no DHCP; the default route is set
//               again; with a new static address in the request (a clone on tap networking):
//               the parent's address replaced by it, then the default route)
//
// Finish is the rest of a primed warm-pool guest's reset, once it becomes a named clone: the pool
// ran Run under a placeholder hostname before the name was known, so only rng (again, after the
// final resume), clock and hostname remain, as the same steps as above.
//
// A failed step stops the sequence (both concurrent steps finish either way); the steps done stay
// done (none can be undone: the old RNG state and keys are gone by design).
// Thread-safety: Run uses one extra thread for ssh_keys, so the GuestSystem must allow calls
// from two threads at once (the real one holds no state; the test fake locks).
#pragma once

#include <chrono>
#include <optional>
#include <variant>
#include <string>
#include <utility>
#include <vector>

#include "guest/guest_system.h"
#include "guest/host_keys.h"
#include "guest/identity_request.h"

namespace ferry::guest {

inline constexpr const char* kResolvConf = "/etc/resolv.conf";
// Read for ferry.ip= / ferry.gw=: a VM on tap networking has a static address and no DHCP.
inline constexpr const char* kKernelCmdline = "/proc/cmdline";

struct IdentityResetResult {
  std::vector<std::pair<std::string, double>> steps_ms;  // the steps that succeeded, in order
  std::optional<std::string> failed_step;                // set when one failed
  std::string error;                                     // why it failed; what stays done
};

class IdentityReset {
 public:
  // REQUIRES: system and host_keys outlive this object.
  IdentityReset(GuestSystem& system, DropbearHostKeys& host_keys)
      : system_(system), host_keys_(host_keys) {}

  // REQUIRES: identity passed ParseCloneIdentity.
  IdentityResetResult Run(const CloneIdentity& identity);
  // rng, clock and hostname, in that order, then (tap networking) the address as the dhcp step
  // of Run sets it, as step "address"; nothing else changes.
  // REQUIRES: finish passed ParseCloneIdentityFinish.
  IdentityResetResult Finish(const CloneIdentityFinish& finish);

 private:
  SystemError ResetHostname(const std::string& hostname);
  SystemError ResetMac(const MacAddress& mac, const std::string& mac_text);
  SystemError RenewLease(const std::string& hostname);
  // Tap networking: replaces every IPv4 address of the NIC with `ipv4` (the parent's goes), then
  // sets the default route via ferry.gw= again.
  SystemError SetStaticAddress(const StaticIpv4& ipv4);

  GuestSystem& system_;
  DropbearHostKeys& host_keys_;
};

// Sends RFC 5227 ARP announcements (sender and target IP the address, sender MAC the NIC's) for
// every IPv4 address of the guest's NIC, `rounds` times each, kAnnounceGap apart. The addresses
// announced, or what failed.
inline constexpr std::chrono::milliseconds kAnnounceGap{20};
std::variant<std::vector<std::string>, std::string> AnnounceAddresses(GuestSystem& system,
                                                                      int rounds);

// The guest's NIC: the first interface in name order that is Ethernet (type 1) with a MAC, not
// loopback. nullopt when there is none.
std::optional<std::string> FindGuestNic(GuestSystem& system);

// /etc/hosts with the 127.0.1.1 line naming `hostname` (added when there is none).
std::string HostsWithHostname(const std::string& hosts, const std::string& hostname);

// /etc/resolv.conf for a lease: "search <domain>" when it has one, a nameserver line per DNS
// server. Empty when the lease names neither.
std::string ResolvConfForLease(const DhcpLease& lease);

}  // namespace ferry::guest
