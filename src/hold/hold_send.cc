// `ferry hold send`, the sending end (hold_send.h), and settling a send whose end this host did
// not see.
#include "hold/hold_send.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <thread>
#include <unordered_set>

#include "core/fault_point.h"
#include "core/ids.h"
#include "crypto/aead.h"
#include "hold/held_vm.h"
#include "hold/object_transfer.h"
#include "migrate/migration_messages.h"
#include "migrate/peer_data_reader.h"

namespace ferry::hold {

using migrate::SettledState;
using nlohmann::json;

namespace {

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

Result<std::shared_ptr<Operation>> HoldService::Send(const std::string& vm, const std::string& to) {
  const std::string what = "send of the hold of vm " + vm + " to " + to;
  FERRY_RETURN_IF_ERROR(ValidateName("vm", vm));
  if (peers_ == nullptr) {
    return Status::FailedPrecondition(what + ": this ferryd has no peers; start it with --tls-dir "
                                             "and add the destination with ferry peer add");
  }
  if (to.empty()) return Status::InvalidArgument(what + ": which host? (--to)");
  if (to == peers_->self().host_id) {
    return Status::InvalidArgument(what + ": the hold is on host " + to + " already");
  }
  FERRY_ASSIGN_OR_RETURN(HoldRow row, Row(vm));
  if (row.step == HoldStep::kExpired) return ExpiredRefusal(what, row);
  if (row.step != HoldStep::kDurable) {
    return Status::FailedPrecondition(what + ": the hold is " + HoldStepName(row.step) +
                                      ", not durable; wait for its operation to end");
  }
  FERRY_RETURN_IF_ERROR(Claim(vm, what));
  auto op = vms_.operations().Start("hold-send", vm);
  vms_.InBackground(
      [this, vm, to, op] {
        HoldSend send(*this, vm, to, op);
        Result<json> sent = send.Run();
        if (!send.settling_in_background()) Release(vm);
        if (sent.ok()) op->Succeed(*sent);
        if (!sent.ok()) {
          spdlog::warn("send of the hold of vm {} to {}: {}", vm, to, sent.status().message());
          op->Fail(sent.status().WithContext("send of the hold of vm " + vm + " to " + to));
        }
      },
      op);
  return op;
}

HoldService::HoldSend::HoldSend(HoldService& service, std::string vm, std::string to,
                                std::shared_ptr<Operation> op)
    : service_(service),
      vm_(std::move(vm)),
      to_(std::move(to)),
      op_(std::move(op)),
      what_("send of the hold of vm " + vm_ + " to " + to_) {}

Result<json> HoldService::HoldSend::Run() {
  Status st = Begin();
  if (st.ok()) st = Prepare();
  if (st.ok()) st = Perform();
  if (st.ok()) st = Finish();
  if (!st.ok()) FERRY_RETURN_IF_ERROR(Recover(st));
  if (!settled_there_) Confirm();
  json out = Summary();
  spdlog::info("{}: done; {} of {} chunks ({}) sent, {} on the wire", what_, wanted_.size(),
               chunks_total_, Mib(chunk_bytes_sent_), Mib(wire_.wire_bytes_sent));
  return out;
}

Status HoldService::HoldSend::Begin() {
  stage_ = Stage::kBegin;
  op_->SetPhase("begin", 2);
  FERRY_ASSIGN_OR_RETURN(row_, service_.Row(vm_));
  if (row_.step != HoldStep::kDurable) {
    return Status::FailedPrecondition("the hold is " + std::string(HoldStepName(row_.step)) +
                                      ", not durable");
  }
  if (row_.expires_at != 0 && row_.expires_at <= std::time(nullptr)) {
    return ExpiredRefusal(what_, row_);
  }
  FERRY_ASSIGN_OR_RETURN(store::HoldManifest manifest, service_.store_.LoadHold(row_.hold_id));
  FERRY_ASSIGN_OR_RETURN(HeldVm held, HeldVm::Parse(manifest.header.spec_json, what_));
  owner_ = manifest.header.owner_fingerprint;
  logical_bytes_ = manifest.logical_bytes;
  if (!held.spec.policy.empty()) {
    FERRY_ASSIGN_OR_RETURN(policy_,
                           crypto::ParsePolicy(held.spec.policy, "the policy of vm " + vm_));
  }
  FERRY_ASSIGN_OR_RETURN(link_, service_.peers_->ConnectToHost(to_, kConnectTimeout));
  // The destination's identity as its certificate proves it, as for a live migration.
  if (policy_) FERRY_RETURN_IF_ERROR(crypto::CheckMigrationAllowed(*policy_, link_->peer()));
  // Journaled before anything of the hold leaves.
  HoldRow sending = row_;
  sending.step = HoldStep::kSending;
  sending.transfer = op_->id();
  sending.peer = to_;
  FERRY_RETURN_IF_ERROR(service_.PutRow(sending).WithContext("journaling the send"));
  row_ = sending;
  journaled_ = true;
  FaultPoint("hold.send.after_journal");
  return Status::Ok();
}

Status HoldService::HoldSend::Prepare() {
  stage_ = Stage::kPrepare;
  op_->SetPhase("prepare on " + to_, 5);
  migrate::HoldPrepareRequest request;
  request.migration = op_->id();
  request.vm = vm_;
  request.owner = owner_;
  FERRY_ASSIGN_OR_RETURN(ObjectOffer offer, OfferObject(*link_, service_.store_, row_.hold_id,
                                                        std::move(request), to_, kPrepareTimeout));
  chunks_total_ = offer.chunks_total;
  manifest_bytes_ = offer.manifest_bytes;
  wanted_ = std::move(offer.wanted);
  return Status::Ok();
}

Status HoldService::HoldSend::Perform() {
  stage_ = Stage::kPerform;
  op_->SetPhase("perform: " + std::to_string(wanted_.size()) + " of " +
                    std::to_string(chunks_total_) + " chunks to send",
                10);
  auto last_progress = Clock::now();
  bool first_batch = true;
  auto progress = [&](size_t sent, uint64_t bytes) {
    if (!first_batch && Clock::now() - last_progress <= std::chrono::milliseconds(500)) return;
    if (first_batch) FaultPoint("hold.send.sending");  // some chunks are on their way
    first_batch = false;
    last_progress = Clock::now();
    op_->SetPhase("perform: " + std::to_string(sent) + " of " + std::to_string(wanted_.size()) +
                      " chunks, " + Mib(bytes) + " sent",
                  10 + static_cast<int>(80 * sent / wanted_.size()));
  };
  FERRY_ASSIGN_OR_RETURN(chunk_bytes_sent_,
                         SendWantedChunks(*link_, service_.store_, wanted_, progress));
  op_->SetPhase("perform: " + Mib(chunk_bytes_sent_) + " sent; " + to_ + " commits its copy", 90);
  return migrate::ExpectPeerMessage<migrate::ReceivedReply>(*link_, kCommitTimeout,
                                                             "the destination's received")
      .status();
}

Status HoldService::HoldSend::Finish() {
  op_->SetPhase("finish on " + to_, 95);
  // Journaled before "finish": a sender that cannot record it must not let the receiver keep
  // its copy (a restart could not tell which copy lives). Until then a failure is Perform's.
  HoldRow sent = row_;
  sent.step = HoldStep::kSent;
  sent.sent_at = std::time(nullptr);
  FERRY_RETURN_IF_ERROR(service_.PutRow(sent).WithContext("journaling the finish"));
  row_ = sent;
  stage_ = Stage::kFinish;
  FaultPoint("hold.send.before_finish");
  Status st = migrate::SendPeerMessage(*link_, migrate::FinishRequest{});
  FaultPoint("hold.send.after_finish");
  if (st.ok()) {
    st = migrate::ExpectPeerMessage<migrate::FinishedReply>(*link_, kReplyTimeout,
                                                            "the destination's finished")
             .status();
  }
  wire_ = link_->counters();
  link_->Close();
  return st;
}

void HoldService::HoldSend::Confirm() {
  stage_ = Stage::kConfirm;
  op_->SetPhase("confirm", 98);
  FaultPoint("hold.send.before_confirm");
  Status shredded = service_.Shred(row_);
  if (!shredded.ok()) {
    spdlog::error("{}: {} holds it, but the copy here could not be shredded: {}", what_, to_,
                  shredded.message());
  }
}

Status HoldService::HoldSend::Recover(const Status& why) {
  switch (stage_) {
    case Stage::kBegin:
    case Stage::kPrepare:
    case Stage::kPerform:
      if (link_ && link_->open() && stage_ != Stage::kBegin) {
        migrate::SendPeerMessage(*link_, migrate::AbortBecause(why.message()));
      }
      if (link_) {
        wire_ = link_->counters();
        link_->Close();
      }
      if (journaled_) {
        HoldRow back = row_;
        back.step = HoldStep::kDurable;
        back.transfer.clear();
        back.peer.clear();
        Status put = service_.PutRow(back);
        if (!put.ok()) spdlog::error("{}: {}", what_, put.message());
      }
      return Status::FromCode(why.code(), why.message() + "; the hold stays on this host");
    case Stage::kFinish: {
      // The receiver may or may not keep its copy: ask it on a new link.
      op_->SetPhase("finish: asking " + to_ + " whether it holds the hold", 96);
      auto settled = service_.SettleSent(row_, Clock::now() + kSettleTimeout);
      if (settled.ok() && *settled == SettledState::kHeld) {
        settled_there_ = true;
        return Status::Ok();
      }
      if (settled.ok()) {
        return Status::Unavailable("host " + to_ + " did not keep the hold (" + why.message() +
                                   "); the hold stays on this host");
      }
      service_.SettleSentInBackground(row_, nullptr);
      in_background_ = true;
      return Status::Unavailable("host " + to_ + " did not confirm that it holds the hold (" +
                                 why.message() + "), nor " + settled.status().message() +
                                 "; the hold here stays 'sent' while ferryd keeps asking " + to_);
    }
    case Stage::kConfirm:
      return Status::Ok();
  }
  return why;
}

json HoldService::HoldSend::Summary() const {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
  return {{"vm", vm_},
          {"to", to_},
          {"total_ms", ms},
          {"logical_bytes", logical_bytes_},
          {"manifest_bytes", manifest_bytes_},
          {"chunks", chunks_total_},
          {"chunks_sent", wanted_.size()},
          {"chunk_bytes_sent", chunk_bytes_sent_},
          {"wire_bytes_sent", wire_.wire_bytes_sent},
          {"wire_bytes_received", wire_.wire_bytes_received},
          {"settled_later", settled_there_}};
}

Result<SettledState> HoldService::SettleSent(const HoldRow& row,
                                             std::chrono::steady_clock::time_point deadline) {
  const auto kAskInterval = std::chrono::seconds(2);
  Status last = Status::Unavailable("not asked yet");
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    auto state = peers_->AskAboutHold(row.peer, row.transfer, row.vm);
    if (state.ok() && *state == SettledState::kHeld) {
      FERRY_RETURN_IF_ERROR(Shred(row).WithContext("host " + row.peer + " holds vm " + row.vm +
                                                   "; shredding the hold here"));
      spdlog::info("hold of vm {}: host {} holds it; the hold here is shredded", row.vm,
                   row.peer);
      return *state;
    }
    if (state.ok() && *state == SettledState::kAbsent && TransferRecordMayBeGone(row, std::time(nullptr))) {
      // The receiver prunes its records of transfers this old: "absent" no longer tells
      // whether it kept the hold. Keeping the hold here "sent" loses nothing; an operator
      // decides.
      last = Status::FailedPrecondition(
          "host " + row.peer + " keeps its records of transfers for " +
          std::to_string(kTransferRecordKeepSeconds / 86400) + " days and this one is older; " +
          "the hold here stays 'sent' (compare `ferry hold list` on both hosts)");
    } else if (state.ok() && *state == SettledState::kAbsent) {
      HoldRow back = row;
      back.step = HoldStep::kDurable;
      back.transfer.clear();
      back.peer.clear();
      back.sent_at = 0;
      FERRY_RETURN_IF_ERROR(PutRow(back));
      spdlog::info("hold of vm {}: host {} did not keep it; the hold stays here", row.vm,
                   row.peer);
      return *state;
    }
    if (!state.ok() || *state != SettledState::kAbsent) {
      last = state.ok() ? Status::Unavailable("host " + row.peer + " has not settled it yet")
                        : state.status();
    }
    if (std::chrono::steady_clock::now() + kAskInterval >= deadline) break;
    std::this_thread::sleep_for(kAskInterval);
  }
  return Status::Unavailable("whether host " + row.peer + " holds vm " + row.vm +
                             " is not known yet (" + last.message() + ")");
}

void HoldService::SettleSentInBackground(const HoldRow& row, std::shared_ptr<Operation> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++settling_;
    busy_.insert(row.vm);  // no restore, delete or send of it until settled
  }
  vms_.InBackground([this, row, op] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      auto settled = SettleSent(row, std::chrono::steady_clock::now() + std::chrono::minutes(1));
      if (settled.ok()) {
        if (op && *settled == SettledState::kHeld) {
          op->Succeed({{"vm", row.vm}, {"to", row.peer}, {"settled_later", true}});
        } else if (op) {
          op->Fail(Status::Unavailable("send of the hold of vm " + row.vm + " to " + row.peer +
                                       ": host " + row.peer +
                                       " did not keep it; the hold stays here"));
        }
        break;
      }
      spdlog::warn("hold of vm {}: {}; asking again", row.vm, settled.status().message());
    }
    std::lock_guard<std::mutex> lock(mu_);
    busy_.erase(row.vm);
    --settling_;
    released_cv_.notify_all();
  });
}

}  // namespace ferry::hold
