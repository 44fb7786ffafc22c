#include "bench/harness/namespace_hosts.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "core/files.h"
#include "testbed/netns.h"

namespace ferry::bench {

namespace {

// "Key: value" tables of /proc/net/netstat: a header line and a value line per group.
Result<uint64_t> NetstatValue(const std::string& text, const std::string& group,
                              const std::string& key) {
  std::istringstream in(text);
  std::string header, values;
  while (std::getline(in, header) && std::getline(in, values)) {
    if (header.rfind(group + ":", 0) != 0) continue;
    std::istringstream h(header), v(values);
    std::string name, value;
    while (h >> name && v >> value) {
      if (name == key) return std::strtoull(value.c_str(), nullptr, 10);
    }
  }
  return Status::NotFound(group + " " + key + " is not in /proc/net/netstat");
}

// The tx_bytes column of interface `ifname` in /proc/net/dev.
Result<uint64_t> DevTxBytes(const std::string& text, const std::string& ifname) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != ifname) continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v = 0;
    // receive: bytes packets errs drop fifo frame compressed multicast; then transmit bytes
    for (int i = 0; i < 9 && fields >> v; ++i) {
    }
    if (!fields) break;
    return v;
  }
  return Status::NotFound("interface " + ifname + " is not in /proc/net/dev");
}

}  // namespace

Status NamespaceHosts::Build() {
  return NetnsSegment::Build(2).WithContext("the benchmark's hosts");
}

Status NamespaceHosts::AddTap(int host, const std::string& name) {
  const std::string ns = Host(host);
  RemoveTap(host, name);  // a leftover of an earlier run that failed
  Status st = testbed::RunIp({"-n", ns, "tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"});
  // A port MAC starting with 0xfe, as ferryd gives its taps (tap_device.cc): the bridge keeps
  // its own MAC, so h1's ARP entry for this host stays right when the tap comes and goes.
  char mac[18];
  std::snprintf(mac, sizeof mac, "fe:00:00:%02x:%02x:%02x", host & 0xff, next_tap_mac_ & 0xff,
                (next_tap_mac_ >> 8) & 0xff);
  ++next_tap_mac_;
  if (st.ok()) st = testbed::RunIp({"-n", ns, "link", "set", name, "address", mac});
  if (st.ok()) st = testbed::RunIp({"-n", ns, "link", "set", name, "master", kBridge, "up"});
  if (!st.ok()) {
    RemoveTap(host, name);
    return st.WithContext("tap " + name + " in " + ns);
  }
  return Status::Ok();
}

void NamespaceHosts::RemoveTap(int host, const std::string& name) {
  const std::string ns = Host(host);
  if (!testbed::NamespaceExists(ns)) return;
  (void)testbed::RunIp({"-n", ns, "link", "del", name});
}

Result<HostTraffic> NamespaceHosts::Traffic(int host) const {
  Result<HostTraffic> result = Status::Internal("not read");
  Status st = InNetworkNamespace(Host(host), [&]() -> Status {
    FERRY_ASSIGN_OR_RETURN(std::string dev, ReadFile("/proc/thread-self/net/dev"));
    FERRY_ASSIGN_OR_RETURN(std::string netstat, ReadFile("/proc/thread-self/net/netstat"));
    FERRY_ASSIGN_OR_RETURN(uint64_t tx, DevTxBytes(dev, kUplink));
    FERRY_ASSIGN_OR_RETURN(uint64_t out, NetstatValue(netstat, "IpExt", "OutOctets"));
    result = HostTraffic{tx, out};
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext(Host(host));
  return result;
}

}  // namespace ferry::bench
