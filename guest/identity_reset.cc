#include "guest/identity_reset.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <functional>
#include <string_view>
#include <thread>
#include <variant>

#include "guest/dhcp_message.h"

namespace ferry::guest {
namespace {

constexpr std::string_view kResetOp = "reset_identity";
constexpr std::string_view kFinishOp = "finish_identity";

// For the whole DHCP exchange, resends included; QEMU's user networking answers at once.
constexpr std::chrono::milliseconds kDhcpTimeout{3000};

struct Timed {
  SystemError error;
  double ms = 0;
};

// The clock step moves CLOCK_REALTIME only; steady_clock is unaffected.
Timed RunTimed(const std::function<SystemError()>& step) {
  auto start = std::chrono::steady_clock::now();
  Timed timed;
  timed.error = step();
  timed.ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return timed;
}

// The value of `key`=VALUE on the kernel command line, if present.
std::optional<std::string> KernelParam(const std::string& cmdline, const std::string& key) {
  std::size_t pos = 0;
  while (pos < cmdline.size()) {
    std::size_t end = cmdline.find_first_of(" \t\n", pos);
    if (end == std::string::npos) end = cmdline.size();
    if (cmdline.compare(pos, key.size() + 1, key + "=") == 0) {
      return cmdline.substr(pos + key.size() + 1, end - pos - key.size() - 1);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

struct Step {
  const char* name;
  std::function<SystemError()> run;
};

// Records in `result` that `op` stopped at `step` because of `why`; the message names what stays
// done and, from `all_steps` (every step of the op, in order), what was not attempted.
void RecordFailure(std::string_view op, const std::vector<const char*>& all_steps, const char* step,
                   const std::string& why, IdentityResetResult& result) {
  std::vector<std::string> done, not_done;
  for (const auto& [name, ms_done] : result.steps_ms) done.push_back(name);
  for (const char* name : all_steps) {
    bool finished = std::find(done.begin(), done.end(), name) != done.end();
    if (!finished && name != std::string(step)) not_done.push_back(name);
  }
  const std::string op_name(op);
  result.failed_step = step;
  result.error = op_name + " failed at step '" + std::string(step) + "': " + why + ". ";
  result.error +=
      done.empty() ? "No step was done before it" : "Done, and still in effect: " + JoinNames(done);
  if (!not_done.empty()) result.error += "; not attempted: " + JoinNames(not_done);
  result.error +=
      ". The guest's identity is partly reset; retry " + op_name + " or discard this clone.";
}

// Runs `steps` one after another, each timed into `result`, and stops at the first that fails.
// False when one failed (and is recorded). `all_steps` as for RecordFailure.
bool RunOrderedSteps(std::string_view op, const std::vector<Step>& steps,
                     const std::vector<const char*>& all_steps, IdentityResetResult& result) {
  for (const Step& step : steps) {
    Timed timed = RunTimed(step.run);
    if (timed.error) {
      RecordFailure(op, all_steps, step.name, *timed.error, result);
      return false;
    }
    result.steps_ms.emplace_back(step.name, timed.ms);
  }
  return true;
}

}  // namespace

std::optional<std::string> FindGuestNic(GuestSystem& system) {
  for (const std::string& iface : system.ListDir("/sys/class/net")) {
    if (iface == "lo") continue;
    auto type = system.ReadFile("/sys/class/net/" + iface + "/type");
    auto address = system.ReadFile("/sys/class/net/" + iface + "/address");
    if (!type || !address || TrimWhitespace(*type) != "1") continue;
    std::string mac = TrimWhitespace(*address);
    if (mac.size() == 17 && mac != "00:00:00:00:00:00") return iface;
  }
  return std::nullopt;
}

std::string HostsWithHostname(const std::string& hosts, const std::string& hostname) {
  const std::string line = "127.0.1.1 " + hostname;
  std::string out;
  bool replaced = false;
  std::size_t pos = 0;
  while (pos < hosts.size()) {
    std::size_t end = hosts.find('\n', pos);
    std::string current = hosts.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? hosts.size() : end + 1;
    bool is_self = current.rfind("127.0.1.1", 0) == 0 && current.size() > 9 &&
                   (current[9] == ' ' || current[9] == '\t');
    if (is_self) {
      if (replaced) continue;  // one line names this host
      current = line;
      replaced = true;
    }
    out += current + "\n";
  }
  if (!replaced) out += line + "\n";
  return out;
}

std::string ResolvConfForLease(const DhcpLease& lease) {
  std::string text;
  if (!lease.domain.empty()) text += "search " + lease.domain + "\n";
  for (uint32_t server : lease.dns_servers) text += "nameserver " + FormatIpv4(server) + "\n";
  return text;
}

SystemError IdentityReset::ResetHostname(const std::string& hostname) {
  if (auto error = system_.SetHostname(hostname)) return error;
  if (auto error = system_.WriteFileAtomically("/etc/hostname", hostname + "\n", 0644)) {
    return error;
  }
  // Optional in an image; when present, the name must resolve to this machine, not the parent.
  if (auto hosts = system_.ReadFile("/etc/hosts")) {
    return system_.WriteFileAtomically("/etc/hosts", HostsWithHostname(*hosts, hostname), 0644);
  }
  return std::nullopt;
}

SystemError IdentityReset::ResetMac(const MacAddress& mac, const std::string& mac_text) {
  auto nic = FindGuestNic(system_);
  if (!nic) return "no Ethernet interface besides lo in /sys/class/net";
  // Bringing the NIC up again then announces its IPv4 addresses (gratuitous ARP), so QEMU's user
  // networking, which remembers the parent's MAC for the guest's address, learns the new one
  // before the next forwarded connection. Without the sysctl (no IPv4) there is nothing to
  // announce, so its absence is no error.
  system_.WriteFileInPlace("/proc/sys/net/ipv4/conf/" + *nic + "/arp_notify", "1\n");
  if (auto error = system_.SetMacAddress(*nic, mac)) return error;
  auto now = system_.ReadFile("/sys/class/net/" + *nic + "/address");
  if (!now || TrimWhitespace(*now) != mac_text) {
    return *nic + " reports MAC " + (now ? TrimWhitespace(*now) : "(unreadable)") +
           " after it was set to " + mac_text;
  }
  return std::nullopt;
}

SystemError IdentityReset::RenewLease(const std::string& hostname) {
  auto nic = FindGuestNic(system_);
  if (!nic) return "no Ethernet interface besides lo in /sys/class/net";
  // Tap networking: the address is the VM's own (ferry.ip= on the kernel command line, set by
  // the image's init) and no DHCP server answers on its bridge. The address stayed through the
  // MAC change; the default route went with the NIC's down and up, so it is set again.
  const std::string cmdline = system_.ReadFile(kKernelCmdline).value_or("");
  if (auto static_ip = KernelParam(cmdline, "ferry.ip")) {
    const auto addresses = system_.Ipv4Addresses(*nic);
    if (std::find(addresses.begin(), addresses.end(), *static_ip) == addresses.end()) {
      return *nic + " does not have its static address " + *static_ip + " (ferry.ip)";
    }
    auto gateway = KernelParam(cmdline, "ferry.gw");
    in_addr parsed{};
    if (!gateway) return std::nullopt;
    if (inet_pton(AF_INET, gateway->c_str(), &parsed) != 1) {
      return "ferry.gw=" + *gateway + " on the kernel command line is not an IPv4 address";
    }
    return system_.ReplaceDefaultRoute(*nic, ntohl(parsed.s_addr));
  }

  // The lease is asked for with the MAC the NIC has now (the one the mac step set and checked).
  auto mac_text = system_.ReadFile("/sys/class/net/" + *nic + "/address");
  auto mac = mac_text ? ParseUnicastMac(TrimWhitespace(*mac_text)) : std::nullopt;
  if (!mac) {
    return *nic + " has no readable unicast MAC (" +
           (mac_text ? TrimWhitespace(*mac_text) : "unreadable") + ") to ask for a lease with";
  }
  // The address the NIC has is asked for again and kept, primary: QEMU's user networking
  // forwards host ports to the address the guest had when it booted, while it gives a new MAC
  // a new address, which is added beside it (see images/udhcpc.script, which does the same at
  // boot). Without an address (the first lease), the leased one becomes the address.
  const std::vector<std::string> addresses = system_.Ipv4Addresses(*nic);
  std::optional<uint32_t> kept;
  if (!addresses.empty()) kept = ParseIpv4(addresses.front());
  DhcpLeaseQuery query;
  query.mac = *mac;
  query.hostname = hostname;
  query.requested_ip = kept;
  query.timeout = kDhcpTimeout;
  auto exchanged = system_.DhcpExchange(*nic, query);
  if (auto* error = std::get_if<std::string>(&exchanged)) return *error;
  const DhcpLease& lease = std::get<DhcpLease>(exchanged);
  if (lease.address != kept) {
    if (auto error = system_.AddIpv4Address(*nic, lease.address, lease.prefix_length)) {
      return "applying the lease of " + FormatIpv4(lease.address) + " from " +
             FormatIpv4(lease.server_id) + ": " + *error;
    }
  }
  if (lease.router) {
    if (auto error = system_.ReplaceDefaultRoute(*nic, *lease.router)) {
      return "applying the lease of " + FormatIpv4(lease.address) + ": " + *error;
    }
  }
  return system_.WriteFileAtomically(kResolvConf, ResolvConfForLease(lease), 0644);
}

SystemError IdentityReset::SetStaticAddress(const StaticIpv4& ipv4) {
  auto nic = FindGuestNic(system_);
  if (!nic) return "no Ethernet interface besides lo in /sys/class/net";
  // The old addresses go first: deleting a primary address also deletes the secondaries of its
  // subnet (unless promote_secondaries), and the new one would be such a secondary.
  for (const std::string& present : system_.Ipv4Addresses(*nic)) {
    if (present == ipv4.text) continue;
    auto address = ParseIpv4(present);
    const std::size_t slash = present.find('/');
    if (!address || slash == std::string::npos) continue;
    const int prefix = std::atoi(present.c_str() + slash + 1);
    if (auto error = system_.RemoveIpv4Address(*nic, *address, prefix)) return error;
  }
  if (auto error = system_.AddIpv4Address(*nic, ipv4.address, ipv4.prefix_length)) return error;
  const std::string cmdline = system_.ReadFile(kKernelCmdline).value_or("");
  auto gateway = KernelParam(cmdline, "ferry.gw");
  if (!gateway) return std::nullopt;
  auto parsed = ParseIpv4(*gateway);
  if (!parsed) return "ferry.gw=" + *gateway + " on the kernel command line is not an IPv4 address";
  return system_.ReplaceDefaultRoute(*nic, *parsed);
}

std::variant<std::vector<std::string>, std::string> AnnounceAddresses(GuestSystem& system,
                                                                      int rounds) {
  auto nic = FindGuestNic(system);
  if (!nic) return std::string("no Ethernet interface besides lo in /sys/class/net");
  auto mac_text = system.ReadFile("/sys/class/net/" + *nic + "/address");
  auto mac = mac_text ? ParseUnicastMac(TrimWhitespace(*mac_text)) : std::nullopt;
  if (!mac) return *nic + " has no readable unicast MAC to announce with";
  std::vector<std::string> announced;
  std::vector<uint32_t> addresses;
  for (const std::string& present : system.Ipv4Addresses(*nic)) {
    if (auto address = ParseIpv4(present)) {
      addresses.push_back(*address);
      announced.push_back(FormatIpv4(*address));
    }
  }
  if (addresses.empty()) return *nic + " has no IPv4 address to announce";
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) std::this_thread::sleep_for(kAnnounceGap);
    for (uint32_t address : addresses) {
      if (auto error = system.AnnounceIpv4(*nic, *mac, address)) return *error;
    }
  }
  return announced;
}

IdentityResetResult IdentityReset::Run(const CloneIdentity& identity) {
  // One after another: the RNG first, so that the key and DHCP's transaction id draw from the
  // clone's own state; the MAC before DHCP, so the lease is asked for with the new one. The two
  // slow steps (ssh_keys, dhcp) used to run side by side in two threads; measured on one vCPU
  // under TCG, the thread and the two steps' contention cost more than their overlap gained
  // (the guest's whole reset 149 -> 132 ms, ssh_keys 20 -> 6 ms, dhcp 51 -> 33 ms, medians of 8
  // alternated clones).
  const std::vector<Step> steps = {
      {"rng", [&] { return system_.AddEntropyAndReseed(identity.entropy); }},
      {"clock", [&] { return system_.SetRealtimeNs(identity.time_unix_ns); }},
      {"machine_id",
       [&] {
         return system_.WriteFileAtomically("/etc/machine-id", identity.machine_id + "\n", 0444);
       }},
      {"hostname", [&] { return ResetHostname(identity.hostname); }},
      {"mac", [&] { return ResetMac(identity.mac, identity.mac_text); }},
      {"ssh_keys",
       [&]() -> SystemError {
         auto key = host_keys_.Regenerate(identity.ssh_host_key);
         if (auto* error = std::get_if<std::string>(&key)) return *error;
         return std::nullopt;
       }},
      {"dhcp",
       [&] {
         return identity.ipv4 ? SetStaticAddress(*identity.ipv4) : RenewLease(identity.hostname);
       }},
  };
  std::vector<const char*> all;
  for (const Step& step : steps) all.push_back(step.name);
  IdentityResetResult result;
  RunOrderedSteps(kResetOp, steps, all, result);
  return result;
}

IdentityResetResult IdentityReset::Finish(const CloneIdentityFinish& finish) {
  // The RNG first again: the pool state seen before this final resume may be shared with what
  // ran then, and nothing the clone does should draw from it.
  std::vector<Step> steps = {
      {"rng", [&] { return system_.AddEntropyAndReseed(finish.entropy); }},
      {"clock", [&] { return system_.SetRealtimeNs(finish.time_unix_ns); }},
      {"hostname", [&] { return ResetHostname(finish.hostname); }},
  };
  if (finish.ipv4) {
    steps.push_back({"address", [&] { return SetStaticAddress(*finish.ipv4); }});
  }
  std::vector<const char*> all;
  for (const Step& step : steps) all.push_back(step.name);
  IdentityResetResult result;
  RunOrderedSteps(kFinishOp, steps, all, result);
  return result;
}

}  // namespace ferry::guest
