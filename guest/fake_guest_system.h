// FakeGuestSystem: a GuestSystem for unit tests. Files live in a map, every call that changes
// something is logged in order, and any such call can be made to fail by name. Calls may come
// from several threads (each takes a lock); the test reads the fields after the calls return.
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "guest/dhcp_message.h"
#include "guest/guest_system.h"
#include "guest/identity_request.h"

namespace ferry::guest {

class FakeGuestSystem : public GuestSystem {
 public:
  // A dropbearkey public key and the fingerprint `ssh-keygen -lf` gives for it.
  static constexpr const char* kKeyLine =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINoNCJUiaA6iyUaBcM7OG+7wZ8zIiJAns6KLvJk3oh6D root@vm";
  static constexpr const char* kKeyFingerprint =
      "SHA256:CMfTW4xhg+QJe2ifVnnjTpGx/8+JJbybjzF/OlZ6bbs";

  FakeGuestSystem() {
    run_program = [this](const std::vector<std::string>& argv) {
      ProgramRun run;
      run.exit_code = 0;
      if (argv.size() >= 5 && argv[1] == "-t") {  // dropbearkey -t ed25519 -f FILE
        files[argv[4]] = "new key " + std::to_string(++keys_made);
        run.output = std::string(
                         "Generating 256 bit ed25519 key, this may take a while...\n"
                         "Public key portion is:\n") +
                     kKeyLine + "\nFingerprint: SHA256:whatever\n";
      } else if (argv.size() >= 4 && argv[1] == "-y") {  // dropbearkey -y -f FILE
        run.output = std::string("Public key portion is:\n") + kKeyLine + "\n";
      }
      return run;
    };
  }

  std::optional<std::string> ReadFile(const std::string& path) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> ListDir(const std::string& path) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<std::string> names;
    std::string prefix = path + "/";
    for (const auto& [file, unused] : files) {
      if (file.rfind(prefix, 0) != 0) continue;
      std::string rest = file.substr(prefix.size());
      std::string name = rest.substr(0, rest.find('/'));
      if (names.empty() || names.back() != name) names.push_back(name);
    }
    return names;
  }
  std::string Hostname() override { return hostname; }
  std::string KernelRelease() override { return "6.1.0-56-amd64"; }
  bool IsInit() override { return is_init; }
  int64_t RealtimeNs() override { return clock_ns; }
  std::optional<std::string> ReadUrandom(std::size_t n) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (Fails("ReadUrandom")) return std::nullopt;
    return std::string(n, '\x5a');
  }
  std::vector<std::string> Ipv6LinkLocal(const std::string& iface) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    auto it = ipv6_link_local.find(iface);
    if (it == ipv6_link_local.end()) return {};
    return it->second;
  }

  std::vector<std::string> Ipv4Addresses(const std::string& iface) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    auto it = ipv4.find(iface);
    if (it == ipv4.end()) return {};
    return it->second;
  }

  SystemError AddEntropyAndReseed(std::string_view bytes) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return Log("AddEntropyAndReseed " + std::to_string(bytes.size()));
  }
  SystemError SetRealtimeNs(int64_t unix_ns) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("SetRealtimeNs " + std::to_string(unix_ns))) return error;
    clock_ns = unix_ns;
    return std::nullopt;
  }
  SystemError WriteFileAtomically(const std::string& path, std::string_view contents,
                                  unsigned mode) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("WriteFileAtomically " + path + " " + std::to_string(mode))) {
      return error;
    }
    files[path] = std::string(contents);
    return std::nullopt;
  }
  SystemError WriteFileInPlace(const std::string& path, std::string_view contents) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("WriteFileInPlace " + path)) return error;
    files[path] = std::string(contents);
    return std::nullopt;
  }
  SystemError RemoveFile(const std::string& path) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("RemoveFile " + path)) return error;
    files.erase(path);
    return std::nullopt;
  }
  SystemError SetHostname(const std::string& name) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("SetHostname " + name)) return error;
    hostname = name;
    return std::nullopt;
  }
  SystemError SetMacAddress(const std::string& iface, const MacAddress& mac) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (auto error = Log("SetMacAddress " + iface)) return error;
    char text[18];
    std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                  mac[3], mac[4], mac[5]);
    files["/sys/class/net/" + iface + "/address"] = std::string(text) + "\n";
    return std::nullopt;
  }
  std::variant<DhcpLease, std::string> DhcpExchange(const std::string& iface,
                                                    const DhcpLeaseQuery& query) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::string line = "DhcpExchange " + iface + " " + FormatMac(query.mac);
    if (query.requested_ip) line += " requesting " + FormatIpv4(*query.requested_ip);
    dhcp_queries.push_back(query);
    if (auto error = Log(line)) return *error;
    return dhcp_reply;
  }
  SystemError AddIpv4Address(const std::string& iface, uint32_t address,
                             int prefix_length) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    const std::string text = FormatIpv4(address) + "/" + std::to_string(prefix_length);
    if (auto error = Log("AddIpv4Address " + iface + " " + text)) return error;
    std::vector<std::string>& addresses = ipv4[iface];
    for (const std::string& present : addresses) {
      if (ParseIpv4(present) == address) return std::nullopt;  // as the kernel's EEXIST
    }
    addresses.push_back(text);
    return std::nullopt;
  }
  SystemError RemoveIpv4Address(const std::string& iface, uint32_t address,
                                int prefix_length) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    const std::string text = FormatIpv4(address) + "/" + std::to_string(prefix_length);
    if (auto error = Log("RemoveIpv4Address " + iface + " " + text)) return error;
    std::vector<std::string>& addresses = ipv4[iface];
    addresses.erase(std::remove(addresses.begin(), addresses.end(), text), addresses.end());
    return std::nullopt;
  }
  SystemError AnnounceIpv4(const std::string& iface, const MacAddress& mac,
                           uint32_t address) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return Log("AnnounceIpv4 " + iface + " " + FormatMac(mac) + " " + FormatIpv4(address));
  }
  SystemError ReplaceDefaultRoute(const std::string& iface, uint32_t gateway) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    const std::string route = "via " + FormatIpv4(gateway) + " dev " + iface;
    if (auto error = Log("ReplaceDefaultRoute " + route)) return error;
    default_route = route;
    return std::nullopt;
  }
  ProgramRun RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        std::chrono::milliseconds) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::string line = "RunProgram";
    for (const std::string& a : argv) line += " " + a;
    programs.push_back(argv);
    program_envs.push_back(env);
    if (auto error = Log(line)) {
      ProgramRun run;
      run.error = *error;
      return run;
    }
    return run_program(argv);
  }

  // Calls that changed something (or tried to), in order.
  std::vector<std::string> log;
  // A call whose log line starts with a key fails with the value as its error.
  std::map<std::string, std::string> fail;

  std::map<std::string, std::string> files = {
      {"/proc/uptime", "12.345 10.00\n"},
      {"/etc/machine-id", "0123456789abcdef0123456789abcdef\n"},
      {"/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 ferry\n"},
      {"/etc/dropbear/dropbear_ed25519_host_key", "parent key"},
      {"/proc/sys/kernel/random/boot_id", "6b1e2b2a-1d7c-4d2e-9a57-1a2b3c4d5e6f\n"},
      {"/sys/class/net/eth0/address", "52:54:00:12:34:56\n"},
      {"/sys/class/net/eth0/type", "1\n"},
      {"/sys/class/net/lo/address", "00:00:00:00:00:00\n"},
      {"/sys/class/net/lo/type", "772\n"},
      {"/sys/class/net/sit0/address", "00:00:00:00:00:00\n"},
      {"/sys/class/net/sit0/type", "776\n"},
  };
  std::map<std::string, std::vector<std::string>> ipv4 = {{"eth0", {"10.0.2.15/24"}}};
  // Left as it is by SetMacAddress (the kernel would derive a new one from the new MAC).
  std::map<std::string, std::vector<std::string>> ipv6_link_local = {
      {"eth0", {"fe80::5054:ff:fe12:3456"}}};
  std::string hostname = "ferry";
  bool is_init = true;
  int64_t clock_ns = 1'700'000'000'000'000'000;
  int keys_made = 0;
  std::vector<std::vector<std::string>> programs;
  std::vector<std::vector<std::string>> program_envs;
  std::function<ProgramRun(const std::vector<std::string>&)> run_program;
  // What DhcpExchange answers: by default what QEMU's user networking gives a second MAC.
  std::variant<DhcpLease, std::string> dhcp_reply = QemuUserNetworkingLease();
  std::vector<DhcpLeaseQuery> dhcp_queries;
  std::string default_route;  // "via 10.0.2.2 dev eth0" once set

  static DhcpLease QemuUserNetworkingLease() {
    DhcpLease lease;
    lease.address = 0x0a000210;  // 10.0.2.16
    lease.prefix_length = 24;
    lease.router = 0x0a000202;  // 10.0.2.2
    lease.dns_servers = {0x0a000203};
    lease.server_id = 0x0a000202;
    lease.lease_seconds = 86400;
    return lease;
  }

 private:
  // IdentityReset calls from two threads at once; the maps and logs above are not thread-safe.
  std::recursive_mutex mu_;

  bool Fails(const std::string& line) {
    for (const auto& [prefix, unused] : fail) {
      if (line.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
  SystemError Log(const std::string& line) {
    log.push_back(line);
    for (const auto& [prefix, error] : fail) {
      if (line.rfind(prefix, 0) == 0) return error;
    }
    return std::nullopt;
  }
};

}  // namespace ferry::guest
