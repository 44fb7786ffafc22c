// What tells one machine from another, as the guest itself reports it (`vm show`'s guest
// identity, `vm random`), for the tests that check clones are each their own machine.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {

struct GuestIdentity {
  std::string vm;
  std::string hostname;
  std::string machine_id;
  std::set<std::string> macs;
  std::set<std::string> link_locals;  // the NICs' IPv6 link-local addresses
  std::set<std::string> ssh_fingerprints;
  std::string urandom;  // 32 bytes from the guest's /dev/urandom, hex
};

// Reads `vm`'s identity through `ferry` (the RNG first: what a clone draws right after resume
// must already be its own) and checks it is complete and that the MAC ferryd records is the
// one the guest's NIC has.
GuestIdentity ReadGuestIdentity(const std::string& socket, const std::string& vm);

// Every pair differs in hostname, machine-id, MACs, IPv6 link-local addresses, SSH host keys and
// RNG output.
void ExpectPairwiseDistinct(const std::vector<GuestIdentity>& machines);

}  // namespace ferry::testing
