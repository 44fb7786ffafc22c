#include "guest/identity_reset.h"

#include <chrono>
#include <functional>
#include <variant>

namespace ferry::guest {
namespace {

// udhcpc gets 3 tries of 1 s; QEMU user networking answers the first at once.
constexpr std::chrono::milliseconds kDhcpTimeout{6000};
constexpr std::size_t kMaxQuotedOutput = 200;

std::string Tail(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() > kMaxQuotedOutput) text = "..." + text.substr(text.size() - kMaxQuotedOutput);
  return text.empty() ? "no output" : "output: " + text;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
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

SystemError IdentityReset::RenewLease() {
  auto nic = FindGuestNic(system_);
  if (!nic) return "no Ethernet interface besides lo in /sys/class/net";
  // The address the NIC has is asked for again and kept (see images/udhcpc.script): QEMU's user
  // networking forwards host ports to the address the guest had when it booted, while it gives
  // a new MAC a new address.
  // -f: no daemon; -q: exit once bound; -n: exit when no lease; 3 tries of 1 s each.
  std::vector<std::string> argv = {"/bin/busybox", "udhcpc", "-i", *nic, "-f", "-q", "-n"};
  argv.insert(argv.end(), {"-t", "3", "-T", "1", "-s", kUdhcpcScript});
  std::vector<std::string> env = {"PATH=/sbin:/bin:/usr/sbin:/usr/bin"};
  std::vector<std::string> addresses = system_.Ipv4Addresses(*nic);
  if (!addresses.empty()) {
    std::string primary = addresses.front().substr(0, addresses.front().find('/'));
    argv.insert(argv.end(), {"-r", primary});
    env.push_back("FERRY_KEEP_ADDRESS=" + primary);
  }
  ProgramRun run = system_.RunProgram(argv, env, kDhcpTimeout);
  if (!run.error.empty()) return "udhcpc on " + *nic + ": " + run.error;
  if (run.exit_code != 0) {
    return "udhcpc on " + *nic + " got no lease (exit code " + std::to_string(run.exit_code) +
           "); " + Tail(run.output);
  }
  if (system_.Ipv4Addresses(*nic).empty()) {
    return "udhcpc on " + *nic + " reported a lease but the interface has no IPv4 address";
  }
  return std::nullopt;
}

IdentityResetResult IdentityReset::Run(const CloneIdentity& identity) {
  using Step = std::pair<const char*, std::function<SystemError()>>;
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
         auto key = host_keys_.Regenerate();
         if (auto* error = std::get_if<std::string>(&key)) return *error;
         return std::nullopt;
       }},
      {"dhcp", [&] { return RenewLease(); }},
  };

  IdentityResetResult result;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto start = std::chrono::steady_clock::now();
    SystemError error = steps[i].second();
    // The clock step moves CLOCK_REALTIME only; steady_clock is unaffected.
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!error) {
      result.steps_ms.emplace_back(steps[i].first, ms);
      continue;
    }
    std::vector<std::string> done, not_done;
    for (const auto& [name, ms_done] : result.steps_ms) done.push_back(name);
    for (std::size_t j = i + 1; j < steps.size(); ++j) not_done.push_back(steps[j].first);
    result.failed_step = steps[i].first;
    result.error =
        "reset_identity failed at step '" + std::string(steps[i].first) + "': " + *error + ". ";
    result.error += done.empty() ? "No step was done before it"
                                 : "Done before it, and still in effect: " + JoinNames(done);
    if (!not_done.empty()) result.error += "; not attempted: " + JoinNames(not_done);
    result.error +=
        ". The guest's identity is partly reset; retry reset_identity or discard this clone.";
    return result;
  }
  return result;
}

}  // namespace ferry::guest
