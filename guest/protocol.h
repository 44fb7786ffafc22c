// The host <-> guest protocol of ferry-guest: the one vocabulary both ends use. ferry-guest
// (guest/) and ferryd (src/qemu/guest_channel.h, guest_messages.h) both include this header; it
// is header-only so the static guest binary links nothing of ferryd's.
//
// Transport: the virtio-serial port named "org.ferry.guest" (a QEMU chardev on the host,
// /dev/vportNpM in the guest). The host may connect, disconnect and reconnect at any time
// (ferryd restarts, snapshot restore, migration); the guest keeps running either way.
//
// Framing: UTF-8 JSON, one object per line ("\n"-terminated; a trailing "\r" is tolerated), at
// most kMaxLineBytes per line not counting the newline. A longer line is discarded and answered
// with an error whose id is null. Empty lines are ignored, so the host may send "\n" to
// resynchronise after it connects.
//
// host -> guest, request:  {"id": <uint>, "op": "<name>", ...args}
// guest -> host, reply:    {"id": <same id>, "ok": true, ...result}
//                          {"id": <same id>, "ok": false, "error": "<message>"}
//   A line that is not a JSON object, or whose "id" is missing or not an unsigned integer, is
//   answered with "id": null. Exactly one reply per non-empty line, in request order. An op may
//   add members to its error reply (reset_identity and finish_identity do).
// guest -> host, event:    {"event": "<name>", ...}   (never has an "id")
//
// Events:
//   ready     {"event": "ready", "proto": 3, "services": ["redis", ...], "boot_ms": <int>}
//             Sent once per boot, when every service named by ferry.services= on the kernel
//             command line has answered (at once if none is named). boot_ms is milliseconds
//             since kernel boot (/proc/uptime). If the host is not connected at that moment the
//             event is held until it is. The event is not repeated: a host that connects later
//             polls "ping".
//
// Ops: a fixed set. The guest never runs a program, path or command the host sends. Arguments
// are members of the request object beside "id" and "op". Ops run one at a time, in order.
//   ping      -> {"proto": 3, "ready": <bool>, "uptime_ms": <int>}
//                ready: every service has answered since boot (it stays true).
//   identity  -> {"hostname": "...", "machine_id": "<32 hex or empty>", "boot_id": "<uuid>",
//                 "macs": [{"iface": "eth0", "mac": "52:54:00:...", "ipv4": ["10.0.2.15/24"],
//                           "ipv6_link_local": ["fe80::5054:ff:fe.."]}],
//                 "kernel": "<uname -r>",
//                 "ssh_host_keys": [{"type": "ssh-ed25519", "fingerprint": "SHA256:<base64>"}],
//                 "clock_unix_ns": <int>}
//                macs: every interface but lo with a MAC; ipv4 primary first; ipv6_link_local
//                empty without IPv6 (a guest from before it leaves it out). ssh_host_keys: the
//                files /etc/dropbear/dropbear_*_host_key, fingerprinted as `ssh-keygen -lf`
//                does (SHA-256 of the public key blob, base64 without padding); a key the
//                image's dropbearkey cannot read is left out. clock_unix_ns: CLOCK_REALTIME.
//   reset_identity {"hostname": "<RFC 1123 label, 1-63 of [A-Za-z0-9-], no '-' at either end>",
//                   "mac": "<xx:xx:xx:xx:xx:xx, unicast, not all zero>",
//                   "machine_id": "<32 lowercase hex, not all zero>",
//                   "entropy": "<hex or padded standard base64 of 32..512 bytes>",
//                   "time_unix_ns": <int in [2020-01-01, 2100-01-01) UTC>,
//                   "ssh_host_key": "<optional: 128 hex, ed25519 seed then public key>",
//                   "ipv4": "<optional: A.B.C.D/P, unicast, P 1..32, for P <= 30 not the
//                            subnet's network or broadcast address; at most 18 bytes>"}
//             -> {"identity": {...as the identity op...},
//                 "steps_ms": {"rng": <ms>, "clock": .., "machine_id": .., "hostname": ..,
//                              "mac": .., "ssh_keys": .., "dhcp": ..},
//                 "total_ms": <ms>}
//                Makes a clone its own machine; ferryd sends it right after restoring a clone
//                and before reporting it ready. entropy comes from the host's CSPRNG (64 bytes
//                is the usual amount). All arguments are checked first; any missing, malformed
//                or unknown member is refused without changing anything (the error never quotes
//                the entropy). Refused when ferry-guest is not PID 1. Then, in this order:
//                  rng         entropy mixed into the kernel pool, credited 8 bits a byte
//                              (RNDADDENTROPY), then the CRNG reseeded (RNDRESEEDCRNG)
//                  clock       CLOCK_REALTIME set to time_unix_ns
//                  machine_id  /etc/machine-id replaced (temporary file and rename)
//                  hostname    sethostname(), /etc/hostname, the 127.0.1.1 line of /etc/hosts
//                  mac         the MAC of the first Ethernet interface but lo (eth0) set
//                              (SIOCSIFHWADDR) while it is up (a driver that refuses gets it
//                              down, set, up); IPv6 switched off and on for it, so its
//                              link-local address is derived from the new MAC; with arp_notify
//                              set, the kernel announces its IPv4 addresses under the new MAC
//                  ssh_keys    every /etc/dropbear/dropbear_*_host_key deleted, then one new
//                              ed25519 key: ssh_host_key written in dropbear's format when it
//                              is given (ferryd always gives it: no program starts), else one
//                              made by /usr/bin/dropbearkey
//                  dhcp        ferry-guest's own DHCP client (no program started) asks for a
//                              lease for the new MAC, asking for the current address, which is
//                              kept (QEMU user networking forwards host ports to it but offers a
//                              new MAC the next address, which is added beside it through
//                              netlink); default route via the lease's router; /etc/resolv.conf
//                              from the lease. With ferry.ip= on the kernel command line (tap
//                              networking): no DHCP, only the default route via ferry.gw= again
//                steps_ms and total_ms are milliseconds to 0.01. Under TCG emulation it takes
//                0.1 to 0.5 s
//                (dropbearkey, when it runs, is most of it); dropbearkey is killed at 5 s and
//                DHCP gives up at 3 s, so it replies within about 5 s plus the quick steps,
//                and a host's timeout should allow that. On failure:
//                {"ok": false, "error": "reset_identity failed at step 'mac': <why>. Done before
//                 it, and still in effect: rng, ...; not attempted: ...", "failed_step": "mac",
//                 "steps_ms": {...the steps done...}}. Done steps are not undone; retrying the
//                whole op is safe. A clone whose reset failed must not serve.
//   finish_identity {"hostname": "<as in reset_identity>",
//                    "entropy": "<as in reset_identity>",
//                    "time_unix_ns": <as in reset_identity>,
//                    "ipv4": "<optional, as in reset_identity>"}
//             -> {"identity": {...as the identity op...},
//                 "steps_ms": {"rng": <ms>, "clock": .., "hostname": ..},
//                 "total_ms": <ms>}
//                The rest of reset_identity for a primed warm-pool guest. The pool prepares
//                everything else before the clone's name is known: ferryd resumes the pool's QEMU
//                once, sends the full reset_identity under a placeholder hostname, and pauses it
//                again. When a user takes it as a named clone, ferryd resumes it and sends this,
//                with only what is decided then. The rng is reseeded again so that a clone never
//                shares RNG state with anything that ran before its final resume. Arguments are
//                checked as in reset_identity; any other member (a "mac", say) is refused, as
//                this op changes nothing else. Refused when ferry-guest is not PID 1. Then, in
//                this order, each step as in reset_identity: rng, clock, hostname; with ipv4
//                (a pool guest on tap networking, primed without its address) then "address",
//                which replaces the NIC's addresses as reset_identity's dhcp step does with
//                ipv4. steps_ms and total_ms are milliseconds to 0.01. On failure, the same shape
//                as reset_identity:
//                {"ok": false, "error": "finish_identity failed at step 'clock': <why>. ...",
//                 "failed_step": "clock", "steps_ms": {...the steps done...}}; retrying is safe.
//   announce  -> {"announced": ["10.77.0.21", ...], "rounds": 2, "rounds_before_reply": 1}
//                RFC 5227 ARP announcements (an ARP request whose sender and target IP are the
//                address, sender MAC the NIC's, to the broadcast MAC), sent through a packet
//                socket for every IPv4 address of the guest's NIC, twice, 20 ms apart; the
//                reply comes once the first round is sent (the repeat follows on its own). Takes no
//                arguments (any member but id and op is refused). ferryd sends it to a clone on tap
//                networking once its tap is on the bridge, so that the segment learns the clone's
//                MAC for its new address before the clone is reported running.
//   urandom   {"bytes": <1..64>} -> {"hex": "<2*bytes lowercase hex>"}
//                Bytes read from the guest's /dev/urandom. A test and diagnostic op: it lets a
//                test check that clones resumed from one snapshot draw different random numbers.
//   ballast   {"mib": <0..1048576>} -> {"mib": <MiB held now>, "fill_ms": <ms>}
//                Holds exactly that much guest memory, filled with pseudo-random bytes that
//                neither compress nor deduplicate (0 frees it). A test and benchmark op: holds,
//                snapshots and migrations are measured on full guests. Growth beyond what the
//                guest can spare (MemAvailable less 64 MiB) is refused: ferry-guest is PID 1.
//   shutdown  -> {} (written out first), then SIGTERM to every process, up to 2 s for them to
//                exit, SIGKILL to the rest, sync(), ACPI power off, which ends QEMU.
//                Refused when ferry-guest is not PID 1.
//
// Versions: proto 2 added reset_identity, urandom, and ssh_host_keys, clock_unix_ns and
// macs[].ipv4 in identity; proto 3 added finish_identity. ballast came later in proto 3 without
// a new version: a guest from before it answers it as an unknown op. announce and reset_identity's
// ipv4 argument came later in proto 3 the same way (an older guest refuses them), and
// macs[].ipv6_link_local (an older guest leaves it out). A host that needs
// them checks proto from ping or the ready event; an older guest answers an op it lacks with an
// "unknown op" error. reset_identity's ssh_host_key argument came later in proto 2 without a new
// version: a guest from before it refuses the argument as an unknown member.
//
// Reconnects: the guest cannot reliably tell one host connection from the next (virtio-serial
// reports a connect only after the new host's first bytes may already have been read), so it
// drops nothing on a disconnect. A host that connects may therefore first receive lines meant
// for its predecessor (replies to ids it never sent, a held ready event) and should ignore
// replies with ids it did not send. It should send "\n" before its first request, which ends any
// partial line a predecessor left behind (that line then gets an error reply with id null).
#pragma once

#include <cstddef>
#include <string_view>

namespace ferry::guest {

inline constexpr int kProtoVersion = 3;
// The protocol versions that added an op (see "Versions" above).
inline constexpr int kProtoWithResetIdentity = 2;
inline constexpr int kProtoWithFinishIdentity = 3;
// The longest line ferry-guest reads. The host reads the guest's lines with its own, larger
// bound (identity replies grow with the guest's interfaces and keys).
inline constexpr std::size_t kMaxLineBytes = 64 * 1024;

// Op names (host -> guest "op").
namespace ops {
inline constexpr std::string_view kPing = "ping";
inline constexpr std::string_view kIdentity = "identity";
inline constexpr std::string_view kResetIdentity = "reset_identity";
inline constexpr std::string_view kFinishIdentity = "finish_identity";
inline constexpr std::string_view kUrandom = "urandom";
inline constexpr std::string_view kBallast = "ballast";
inline constexpr std::string_view kAnnounce = "announce";
inline constexpr std::string_view kShutdown = "shutdown";
}  // namespace ops

// Event names (guest -> host "event").
namespace events {
inline constexpr std::string_view kReady = "ready";
}  // namespace events
inline constexpr std::string_view kPortName = "org.ferry.guest";

// Lines ferry-guest prints on the serial console; the host waits for kReadyMarker.
inline constexpr std::string_view kStartingMarker = "ferry-guest: starting";
inline constexpr std::string_view kReadyMarker = "ferry-guest: ready";

}  // namespace ferry::guest
