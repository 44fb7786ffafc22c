#include "vm/ready_ping.h"

namespace ferry::vm {

ReadyPingStep NextReadyPing(bool outstanding, std::chrono::milliseconds unanswered_for,
                            const std::function<bool()>& guest_runs) {
  if (outstanding && unanswered_for < kUnansweredPingResend) return ReadyPingStep::kWait;
  return guest_runs() ? ReadyPingStep::kSend : ReadyPingStep::kWait;
}

}  // namespace ferry::vm
