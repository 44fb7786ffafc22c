// The host <-> guest protocol of ferry-guest.
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
//   answered with "id": null. Exactly one reply per non-empty line, in request order.
// guest -> host, event:    {"event": "<name>", ...}   (never has an "id")
//
// Events:
//   ready     {"event": "ready", "proto": 1, "services": ["redis", ...], "boot_ms": <int>}
//             Sent once per boot, when every service named by ferry.services= on the kernel
//             command line has answered (at once if none is named). boot_ms is milliseconds
//             since kernel boot (/proc/uptime). If the host is not connected at that moment the
//             event is held until it is. The event is not repeated: a host that connects later
//             polls "ping".
//
// Ops: a fixed set. The guest never runs a program, path or command the host sends.
//   ping      -> {"proto": 1, "ready": <bool>, "uptime_ms": <int>}
//                ready: every service has answered since boot (it stays true).
//   identity  -> {"hostname": "...", "machine_id": "<32 hex or empty>", "boot_id": "<uuid>",
//                 "macs": [{"iface": "eth0", "mac": "52:54:00:..."}], "kernel": "<uname -r>"}
//   shutdown  -> {} (written out first), then SIGTERM to every process, up to 2 s for them to
//                exit, SIGKILL to the rest, sync(), ACPI power off, which ends QEMU.
//                Refused when ferry-guest is not PID 1.
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

inline constexpr int kProtoVersion = 1;
inline constexpr std::size_t kMaxLineBytes = 64 * 1024;
inline constexpr std::string_view kPortName = "org.ferry.guest";

// Lines ferry-guest prints on the serial console; the host waits for kReadyMarker.
inline constexpr std::string_view kStartingMarker = "ferry-guest: starting";
inline constexpr std::string_view kReadyMarker = "ferry-guest: ready";

}  // namespace ferry::guest
