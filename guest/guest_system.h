// GuestSystem: the parts of the guest OS that the ops read and change, behind an interface so
// the ops can be tested on any machine with canned files and injected failures (as LevelDB's Env
// does for the filesystem). The real implementation needs root in a guest for the calls that
// change something; they are only made by ops that validated their arguments first.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "guest/dhcp_lease.h"
#include "guest/program_run.h"

namespace ferry::guest {

// The outcome of a call that changes something: nullopt on success, else what failed on what
// object and why ("ioctl RNDADDENTROPY on /dev/urandom: Operation not permitted").
using SystemError = std::optional<std::string>;

using MacAddress = std::array<uint8_t, 6>;

// What GuestSystem::DhcpExchange asks the DHCP servers for.
struct DhcpLeaseQuery {
  MacAddress mac{};                         // the NIC's current MAC: chaddr and client id
  std::string hostname;                     // sent as option 12 when not empty
  std::optional<uint32_t> requested_ip;     // host byte order; asked for in the DHCPDISCOVER
  std::chrono::milliseconds timeout{3000};  // for the whole exchange
};

class GuestSystem {
 public:
  virtual ~GuestSystem() = default;

  // Whole file contents, or nullopt if it cannot be read.
  virtual std::optional<std::string> ReadFile(const std::string& path) = 0;
  // Entry names in a directory (no "." or ".."), sorted; empty if it cannot be read.
  virtual std::vector<std::string> ListDir(const std::string& path) = 0;
  virtual std::string Hostname() = 0;
  virtual std::string KernelRelease() = 0;
  // True when this process is the guest's init (PID 1), the only case where it may power off or
  // change the machine's identity.
  virtual bool IsInit() = 0;
  // CLOCK_REALTIME in nanoseconds since the Unix epoch.
  virtual int64_t RealtimeNs() = 0;
  // `n` bytes read from /dev/urandom, or nullopt if that fails.
  virtual std::optional<std::string> ReadUrandom(std::size_t n) = 0;
  // The interface's IPv4 addresses with prefix length ("10.0.2.15/24"), primary first.
  virtual std::vector<std::string> Ipv4Addresses(const std::string& iface) = 0;
  // The interface's IPv6 link-local addresses ("fe80::..."), without prefix; none without IPv6.
  virtual std::vector<std::string> Ipv6LinkLocal(const std::string& iface) = 0;

  // Mixes `bytes` into the kernel's entropy pool, credited as 8 bits per byte
  // (RNDADDENTROPY), then makes the kernel's CRNG reseed from the pool now (RNDRESEEDCRNG).
  virtual SystemError AddEntropyAndReseed(std::string_view bytes) = 0;
  virtual SystemError SetRealtimeNs(int64_t unix_ns) = 0;
  // Replaces the file through a temporary file beside it and rename(), so a reader sees the old
  // or the new contents, never a mix.
  virtual SystemError WriteFileAtomically(const std::string& path, std::string_view contents,
                                          unsigned mode) = 0;
  // Writes into an existing file in place (for /proc/sys and /sys, which cannot be renamed over).
  virtual SystemError WriteFileInPlace(const std::string& path, std::string_view contents) = 0;
  // Succeeds when the file is already absent.
  virtual SystemError RemoveFile(const std::string& path) = 0;
  virtual SystemError SetHostname(const std::string& name) = 0;
  // Sets the interface's MAC address with SIOCSIFHWADDR, live where the driver allows it (the
  // link, its addresses and routes stay), else with the interface taken down and up again (its
  // routes are then lost and must be set again; DHCP does). Either way the IPv6 link-local
  // address is derived anew from the new MAC and, with arp_notify set, the kernel announces the
  // interface's IPv4 addresses with the new MAC (gratuitous ARP).
  virtual SystemError SetMacAddress(const std::string& iface, const MacAddress& mac) = 0;
  // Asks the DHCP servers on the interface's link for a lease, from the guest's own client (a
  // UDP socket on port 68; see dhcp_client.h): DISCOVER, OFFER, REQUEST, ACK within
  // query.timeout. Changes nothing on the interface. The lease, or what failed, naming the
  // interface ("no DHCP offer on eth0 within 3000 ms").
  virtual std::variant<DhcpLease, std::string> DhcpExchange(const std::string& iface,
                                                            const DhcpLeaseQuery& query) = 0;
  // Adds the IPv4 address (host byte order) with its prefix to the interface, after any it has
  // (so the first stays primary). An address the interface already has is success.
  virtual SystemError AddIpv4Address(const std::string& iface, uint32_t address,
                                     int prefix_length) = 0;
  // Removes the IPv4 address (host byte order) with its prefix from the interface.
  virtual SystemError RemoveIpv4Address(const std::string& iface, uint32_t address,
                                        int prefix_length) = 0;
  // Sends one ARP announcement (RFC 5227 section 2.3: an ARP request whose sender and target IP
  // are `address`, sender MAC `mac`, to the broadcast MAC) out of the interface, through a
  // packet socket, so that the segment's ARP caches and switches learn `mac` for `address`.
  virtual SystemError AnnounceIpv4(const std::string& iface, const MacAddress& mac,
                                   uint32_t address) = 0;
  // Makes the default route go via `gateway` (host byte order) out of `iface`, replacing any.
  virtual SystemError ReplaceDefaultRoute(const std::string& iface, uint32_t gateway) = 0;
  // Runs argv[0] (an absolute path) with argv, the environment `env` ("NAME=value" entries),
  // stdin from /dev/null and stdout and stderr captured. Kills it at `timeout`.
  // REQUIRES: argv, env and the program are fixed by the guest, never taken from the host.
  virtual ProgramRun RunProgram(const std::vector<std::string>& argv,
                                const std::vector<std::string>& env,
                                std::chrono::milliseconds timeout) = 0;
};

// The real system, through the Linux syscalls and /proc and /sys.
std::unique_ptr<GuestSystem> NewLinuxGuestSystem();

// Milliseconds since kernel boot, from the first field of /proc/uptime ("12.34 5.67").
std::optional<long long> ParseUptimeMs(const std::string& proc_uptime);

// Removes leading and trailing whitespace, as file contents like boot_id end with "\n".
std::string TrimWhitespace(const std::string& s);

}  // namespace ferry::guest
