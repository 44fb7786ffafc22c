#include "harness/guest_identity.h"

namespace ferry::testing {

using nlohmann::json;

GuestIdentity ReadGuestIdentity(const std::string& socket, const std::string& vm) {
  GuestIdentity id;
  id.vm = vm;
  json random = FerryJsonAt(socket, {"vm", "random", vm, "--bytes", "32"});
  id.urandom = random.value("hex", "");
  EXPECT_EQ(id.urandom.size(), 64u) << random.dump();
  json show = FerryJsonAt(socket, {"vm", "show", vm});
  const json g = show.value("guest", json::object());
  EXPECT_FALSE(g.contains("error")) << show.dump();
  id.hostname = g.value("hostname", "");
  id.machine_id = g.value("machine_id", "");
  for (const auto& m : g.value("macs", json::array())) {
    id.macs.insert(m.value("mac", ""));
    // None yet right after boot: the kernel adds it once it sees the link up (linkwatch, up to
    // a second later).
    for (const auto& a : m.value("ipv6_link_local", json::array())) {
      id.link_locals.insert(a.get<std::string>());
    }
  }
  for (const auto& k : g.value("ssh_host_keys", json::array())) {
    id.ssh_fingerprints.insert(k.value("fingerprint", ""));
  }
  EXPECT_EQ(id.machine_id.size(), 32u) << vm << ": " << g.dump();
  EXPECT_FALSE(id.macs.empty()) << vm << ": " << g.dump();
  EXPECT_FALSE(id.ssh_fingerprints.empty()) << vm << ": " << g.dump();
  EXPECT_TRUE(id.macs.count(show.value("mac", ""))) << vm << ": " << show.dump();
  return id;
}

void ExpectPairwiseDistinct(const std::vector<GuestIdentity>& machines) {
  for (size_t a = 0; a < machines.size(); ++a) {
    for (size_t b = a + 1; b < machines.size(); ++b) {
      const GuestIdentity& x = machines[a];
      const GuestIdentity& y = machines[b];
      SCOPED_TRACE(x.vm + " vs " + y.vm);
      EXPECT_NE(x.hostname, y.hostname);
      EXPECT_NE(x.machine_id, y.machine_id);
      for (const auto& mac : x.macs) EXPECT_FALSE(y.macs.count(mac)) << "shared MAC " << mac;
      // Derived from the MAC: one a clone kept from its parent would say who the parent is,
      // and clash with it (and with its siblings) on a shared segment.
      for (const auto& a : x.link_locals) {
        EXPECT_FALSE(y.link_locals.count(a)) << "shared IPv6 link-local address " << a;
      }
      for (const auto& fp : x.ssh_fingerprints) {
        EXPECT_FALSE(y.ssh_fingerprints.count(fp)) << "shared SSH host key " << fp;
      }
      EXPECT_NE(x.urandom, y.urandom) << "the guests' /dev/urandom gave the same bytes";
    }
  }
}

}  // namespace ferry::testing
