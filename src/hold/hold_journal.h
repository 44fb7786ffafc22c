// The registry's row for one hold: which step of hold or restore it has reached. With the
// store's manifest it is what a starting ferryd reads to leave exactly one copy of the VM —
// running here, or held — whatever step a crash interrupted (HoldService::Recover).
//
//   step        written                                   a crash here leaves, and Recover does
//   sealing     before the VM is paused                   the VM (maybe paused), maybe a manifest:
//                                                         no manifest -> resume the VM, drop row;
//                                                         manifest -> the hold is durable: as below
//   durable     after the manifest is durable             the hold, maybe the VM still paused:
//                                                         the VM's copy is ended (the hold is it)
//   restoring   before the restored VM is launched        maybe a running VM: running -> the hold
//                                                         is consumed (shredded); not -> durable
//   expired     after the reaper (or a late restore)      nothing to do: the row only tells the
//               shredded a hold past its owner's limit    user what became of the hold
//
// `ferry hold send` (hold_send.cc, hold_receive.cc; migration_protocol.h "Sending a hold"):
//   sending     sender, before anything of the hold       the hold here; the receiver drops its
//               leaves (Begin)                            copy when the link ends: durable again
//   sent        sender, before "finish" is sent           only the receiver knows whether it
//                                                         keeps it: ask it (hold-query); "held"
//                                                         -> shred here, "absent" -> durable
//   receiving   receiver, before its import begins        no transfer record -> the copy here is
//                                                         dropped (shredded, row gone); with one
//                                                         ("hold-in", written on "finish") the
//                                                         copy here is the hold: durable
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::hold {

enum class HoldStep { kSealing, kDurable, kRestoring, kExpired, kSending, kSent, kReceiving };

const char* HoldStepName(HoldStep step);
std::optional<HoldStep> HoldStepFromName(const std::string& name);

struct HoldRow {
  std::string vm;       // the held VM's name (the row's key)
  std::string hold_id;  // the store's name for the hold
  HoldStep step = HoldStep::kSealing;
  int64_t held_at = 0;     // unix seconds
  int64_t expires_at = 0;  // unix seconds; 0: the owner set no limit
  // The VM ran when the hold paused it: a hold that does not finish resumes it.
  bool vm_was_running = false;
  // A send in flight: the transfer's id (the sender's operation id) and the other host. The
  // receiver keeps them on its durable row, naming where the hold came from.
  std::string transfer;
  std::string peer;
  // Sender, step sent: when "finish" was journaled (unix seconds; 0 for a row of an older ferryd).
  // The receiver's record of a transfer is pruned kTransferRecordKeepSeconds after it.
  int64_t sent_at = 0;

  static constexpr std::string_view kKind = "hold";  // the registry's kind (registry/table.h)
  nlohmann::json ToJson() const;  // without vm: it is the row's name
  // `vm` is the row's name; `j` its value. Corruption names the row.
  static Result<HoldRow> FromJson(const std::string& vm, const nlohmann::json& j);
};

// The receiver's record of a transfer it kept (the row's name: the transfer id), written when
// "finish" arrives: what a hold-query is answered from, after a restart too. Its time dates it:
// the reaper prunes records older than kTransferRecordKeepSeconds.
struct TransferRecord {
  std::string vm;
  std::string from;  // the sending host
  int64_t at = 0;    // unix seconds; 0 in a record of an older ferryd (never pruned)

  static constexpr std::string_view kKind = "hold-in";
  nlohmann::json ToJson() const;
  static Result<TransferRecord> FromJson(const std::string& transfer, const nlohmann::json& j);
};

// How long a receiver keeps its record of a transfer it kept (registry kind "hold-in"): the one
// thing that answers a sender's hold-query after the hold itself moved on. Pruned after this.
inline constexpr int64_t kTransferRecordKeepSeconds = int64_t{30} * 86400;
// Whether the receiver may have pruned its record of `row`'s send (step sent) by `now`: then its
// "absent" no longer means it did not keep the hold. A day's margin for clocks and the reaper.
bool TransferRecordMayBeGone(const HoldRow& row, int64_t now);

}  // namespace ferry::hold
