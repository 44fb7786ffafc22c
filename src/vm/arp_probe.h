// Duplicate address detection for a clone's tap address, from the host on the clone's bridge,
// before anything of the clone is started (RFC 5227 section 2.1.1, "probe"):
//
//   ferryd, on bridge ferrybr0:  ARP request, sender MAC = the bridge's, sender IP = 0.0.0.0,
//                                target IP = the candidate, to the broadcast MAC; kProbes of
//                                them kProbeGap apart
//   any host that has the address answers with an ARP reply (Linux answers a probe from
//   0.0.0.0 at once); any ARP packet whose *sender* IP is the candidate means it is in use.
//
// Why from the host and not from the guest's new MAC: the answer must come before anything
// starts (a clone refused leaves nothing behind), and the guest only runs after its QEMU did;
// the host's leg on the bridge sees the same segment the clone will join. Why not RFC 5227's
// timing (PROBE_WAIT up to 1 s, 3 probes 1-2 s apart, ANNOUNCE_WAIT 2 s): it is meant for hosts
// on segments they do not know; ferry probes a segment it is on, whose hosts answer in
// milliseconds, and a clone should serve in well under a second. kListen after the first probe
// is the whole wait; a host that answers later than that is missed (the guest's announcement
// then tells it the address moved, and the conflict shows in its logs).
//
// The frame codec (ArpProbeFrame, ArpConflict) is pure and parses untrusted frames with bounds
// checks; Probe needs CAP_NET_RAW (ferryd has it for tap networking).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::vm {

inline constexpr int kProbes = 3;
inline constexpr std::chrono::milliseconds kProbeGap{30};
inline constexpr std::chrono::milliseconds kListen{120};

using EtherAddress = std::array<uint8_t, 6>;

// The 42-byte Ethernet frame of an ARP probe for `target` (host byte order) from `sender_mac`.
std::array<uint8_t, 42> ArpProbeFrame(const EtherAddress& sender_mac, uint32_t target);

// The sender MAC ("52:54:00:..") of `frame` (a whole Ethernet frame as received) when it is an
// ARP packet for IPv4 over Ethernet whose sender IP is `target` and whose sender MAC is not
// `own` (our own probe looped back never counts); nullopt for anything else, of any length.
std::optional<std::string> ArpConflict(const uint8_t* frame, size_t size, uint32_t target,
                                       const EtherAddress& own);

// Who answered for one candidate address.
struct ProbeAnswer {
  uint32_t address = 0;
  std::optional<std::string> mac;  // set: in use, by this MAC
};

// Probes every address of `targets` at once on `bridge` (kProbes probes each, listening kListen
// in all). One answer per target, in order. Unavailable when the packet socket cannot be made
// or the bridge has no MAC.
Result<std::vector<ProbeAnswer>> ProbeAddresses(const std::string& bridge,
                                                const std::vector<uint32_t>& targets);

}  // namespace ferry::vm
