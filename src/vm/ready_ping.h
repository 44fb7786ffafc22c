// When ferryd's guest watcher may put a "ping" on the guest channel while it waits for the guest
// to be ready (VmRuntime::WatchGuest).
//
// A ping sent to a guest that does not run stays queued in QEMU's chardev socket: QEMU reads it
// only when the guest can take it. A QEMU that waits paused -- a spare or pool QEMU, an incoming
// migration -- used to collect one ping per poll, and the guest, once resumed, answered each of
// them (cold code under TCG) before the request it was resumed for: measured, 50-180 ms of a
// plain clone's identity reset after its spare had waited some seconds, growing with the wait.
// So: one ping on the wire at a time, and a new one only while QEMU runs the guest.
#pragma once

#include <chrono>
#include <functional>

namespace ferry::vm {

// An unanswered ping is replaced after this long, if the guest runs: it may have been lost (a
// guest that reopens its port drops what it had not read).
inline constexpr std::chrono::milliseconds kUnansweredPingResend(5000);

enum class ReadyPingStep {
  kWait,  // leave the wire as it is
  kSend,  // put a new ping on it (forgetting the unanswered one, if any)
};

// `outstanding`: a ping is on the wire, unanswered since `unanswered_for`. `guest_runs` (QMP
// query-status, a round trip) is asked only when a ping could be sent.
ReadyPingStep NextReadyPing(bool outstanding, std::chrono::milliseconds unanswered_for,
                            const std::function<bool()>& guest_runs);

}  // namespace ferry::vm
