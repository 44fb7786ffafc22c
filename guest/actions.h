// GuestActions: the fixed set of ops the host may ask for (see protocol.h). Ops read the guest's
// state, reset a clone's identity from validated arguments, or, for shutdown, ask the caller to
// power off; none runs a program, path or command the host sends. Every input line gets exactly
// one reply line, whatever it contains.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "guest/ballast.h"
#include "guest/guest_system.h"
#include "guest/host_keys.h"
#include "guest/identity_reset.h"
#include "guest/readiness.h"

namespace ferry::guest {

struct ActionReply {
  std::string line;              // one JSON object, without the "\n"
  bool power_off_after = false;  // shutdown accepted: power off once `line` is written out
  // Work the reply does not wait for, run once `line` is sent, beside the request loop (the
  // announcement's repeat); what failed, or "". Empty: none.
  std::function<std::string()> after_reply = nullptr;
};

class GuestActions {
 public:
  // REQUIRES: system and readiness outlive this object.
  GuestActions(GuestSystem& system, const Readiness& readiness)
      : system_(system),
        readiness_(readiness),
        host_keys_(system),
        identity_reset_(system, host_keys_) {}

  // Answers one request line. REQUIRES: line is not empty (empty lines are skipped by caller).
  ActionReply HandleLine(std::string_view line);

  // The reply to a line that passed kMaxLineBytes and was dropped.
  static std::string OverlongLineReply();

  // The unsolicited "ready" event, stamped now.
  std::string ReadyEvent();

 private:
  long long UptimeMs();
  std::string ResetIdentity(const nlohmann::json& id, const nlohmann::json& request);
  std::string FinishIdentity(const nlohmann::json& id, const nlohmann::json& request);
  // RFC 5227 announcements of the NIC's IPv4 addresses (protocol.h, announce): the first round
  // before the reply, the others after it (ActionReply::after_reply).
  static constexpr int kAnnounceRounds = 2;
  ActionReply Announce(const nlohmann::json& id, const nlohmann::json& request);
  std::string HoldBallast(const nlohmann::json& id, const nlohmann::json& request);
  // The reply of reset_identity and finish_identity: the guest's identity after it, or the
  // failed step, with the step times; total_ms counted from `start`.
  std::string IdentityStepsReply(const nlohmann::json& id, const IdentityResetResult& result,
                                 std::chrono::steady_clock::time_point start);

  GuestSystem& system_;
  const Readiness& readiness_;
  DropbearHostKeys host_keys_;
  IdentityReset identity_reset_;
  Ballast ballast_;
};

}  // namespace ferry::guest
