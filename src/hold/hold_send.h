// HoldService::HoldSend: the sending end of `ferry hold send VM --to HOST`, as the phases of a
// live migration (migrate/migration_protocol.h, "Sending a hold"), one function each:
//
//   Begin    the hold durable and not expired; the owner's policy; a link to HOST, whose
//            certificate the policy's migration rule must allow -- refused here, nothing of the
//            hold has left; then the row says "sending"
//   Prepare  the manifest and data key (inside TLS) to HOST, which checks them and the policy
//            itself and answers with the chunk ids it lacks
//   Perform  those chunks, as stored (sealed); HOST commits its copy ("received")
//   Finish   the row says "sent", then "finish": from here only HOST decides which copy lives
//   Confirm  HOST answered "finished": the hold here is shredded
//
// A failure undoes what its stage asks (Recover): before Finish the hold here stays (durable
// again) and HOST drops its copy when told to abort or when the link ends; after "finish" the
// hold here is never kept or dropped on a guess: HOST is asked ("hold-query") until it answers.
//
// Thread-safety: one HoldSend is used by the operation's thread only.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crypto/owner_policy.h"
#include "hold/hold_service.h"
#include "migrate/peer_link.h"
#include "store/chunk_id.h"

namespace ferry::hold {

class HoldService::HoldSend {
 public:
  // REQUIRES: the caller claimed `vm` (Claim) for the whole run; service.peers_ is set.
  HoldSend(HoldService& service, std::string vm, std::string to, std::shared_ptr<Operation> op);

  // The phases in order. The summary for the operation: HOST holds it, this host does not.
  Result<nlohmann::json> Run();
  // A failed Finish left the settling to a background task, which now owns the claim on the VM.
  bool settling_in_background() const { return in_background_; }

 private:
  enum class Stage { kBegin, kPrepare, kPerform, kFinish, kConfirm };
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kConnectTimeout{10000};
  static constexpr std::chrono::milliseconds kPrepareTimeout{120000};
  // The receiver syncs and commits before it answers "received".
  static constexpr std::chrono::milliseconds kCommitTimeout{300000};
  static constexpr std::chrono::milliseconds kReplyTimeout{60000};
  static constexpr std::chrono::milliseconds kSettleTimeout{30000};

  Status Begin();
  Status Prepare();
  Status Perform();
  Status Finish();
  void Confirm();
  // Undoes what stage_ holds; returns the outcome (Ok when a failed Finish turns out to have
  // moved the hold after all).
  Status Recover(const Status& why);
  nlohmann::json Summary() const;

  HoldService& service_;
  const std::string vm_, to_;
  const std::shared_ptr<Operation> op_;
  const std::string what_;

  Stage stage_ = Stage::kBegin;
  HoldRow row_;
  bool journaled_ = false;  // the row says "sending" or "sent"
  std::string owner_;       // the store's owner scope of the hold
  std::optional<crypto::OwnerPolicy> policy_;
  std::unique_ptr<migrate::PeerLink> link_;
  std::vector<store::ChunkId> wanted_;
  uint64_t chunks_total_ = 0, manifest_bytes_ = 0, logical_bytes_ = 0;
  uint64_t chunk_bytes_sent_ = 0;
  Clock::time_point started_ = Clock::now();
  migrate::PeerLink::Counters wire_;
  bool settled_there_ = false;
  bool in_background_ = false;
};

}  // namespace ferry::hold
