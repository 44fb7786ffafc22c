// GuestActions: the fixed set of ops the host may ask for (see protocol.h). Each op reads the
// guest's state or, for shutdown, asks the caller to power off; none runs anything the host
// sends. Every input line gets exactly one reply line, whatever it contains.
#pragma once

#include <string>
#include <string_view>

#include "guest/guest_system.h"
#include "guest/readiness.h"

namespace ferry::guest {

struct ActionReply {
  std::string line;              // one JSON object, without the "\n"
  bool power_off_after = false;  // shutdown accepted: power off once `line` is written out
};

class GuestActions {
 public:
  // REQUIRES: system and readiness outlive this object.
  GuestActions(GuestSystem& system, const Readiness& readiness)
      : system_(system), readiness_(readiness) {}

  // Answers one request line. REQUIRES: line is not empty (empty lines are skipped by caller).
  ActionReply HandleLine(std::string_view line);

  // The reply to a line that passed kMaxLineBytes and was dropped.
  static std::string OverlongLineReply();

  // The unsolicited "ready" event, stamped now.
  std::string ReadyEvent();

 private:
  long long UptimeMs();

  GuestSystem& system_;
  const Readiness& readiness_;
};

}  // namespace ferry::guest
