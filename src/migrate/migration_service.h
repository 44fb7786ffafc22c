// MigrationService: live migration of this host's VMs to peers, and of peers' VMs to this host,
// over authenticated peer links (migration_protocol.h). It owns the peer port (a PeerListener)
// and the peer table (registry objects of kind "peer": name -> address).
//
// Thread-safety: all public methods may be called from any thread. Each outgoing migration runs
// on a background thread of the VM service; each incoming one on its link's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "crypto/host_credentials.h"
#include "migrate/disk_export.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_rows.h"
#include "migrate/peer_listener.h"
#include "migrate/peer_tls.h"
#include "vm/vm_service.h"

namespace ferry::migrate {

struct MigrationConfig {
  std::string listen;   // "10.0.0.2:7400"; "" = no peer port (this host only sends)
  std::string tls_dir;  // host.key, host.crt, ca.crt from `ferry host enroll`
  int default_downtime_ms = 50;
  // What this host accepts as a destination; it decides, not the peer (docs/migration.md).
  // Bridges an incoming tap VM may be attached to (--allow-bridge); empty: no tap VM arrives.
  std::vector<std::string> allow_bridges;
  // Refuse a VM that arrives without an owner's policy (--require-policy).
  bool require_policy = false;
  // Owner key fingerprints (64 hex digits, or the 16-digit short form `ferry owner` shows) whose
  // VMs may arrive (--accept-owner); empty: any owner whose signature verifies.
  std::vector<std::string> accept_owners;
};

struct MigrateRequest {
  std::string vm;
  std::string to;       // a peer's host id
  int downtime_ms = 0;  // 0: the configured default
};

// The receiving end of `ferry hold send` (hold::HoldService implements it): the peer port is
// the migration service's, so incoming hold messages are handed on from here.
class IncomingHolds {
 public:
  virtual ~IncomingHolds() = default;
  // Serves one "hold-prepare" on `link` (the link's thread) to its end: replies, receives,
  // commits or drops. The caller closes the link afterwards.
  virtual void ReceiveHold(PeerLink& link, const HoldPrepareRequest& request) = 0;
  // The answer to a "hold-query": kHeld, kAbsent or kUnsettled, once this host's own handling
  // of that transfer has ended.
  virtual SettledState HoldSettled(const HoldQueryRequest& query) = 0;
};

class MigrationService {
 public:
  // Loads the host's credentials (refusing a key others can read) and opens the peer port.
  // Keeps its peers and journal in `registry`, which outlives it.
  static Result<std::unique_ptr<MigrationService>> Start(vm::VmService& vms,
                                                         registry::Registry& registry,
                                                         MigrationConfig config);
  ~MigrationService();

  Result<std::shared_ptr<Operation>> Migrate(const MigrateRequest& request);
  Status Cancel(const std::string& operation_id);
  nlohmann::json List();

  Status AddPeer(const std::string& host_id, const std::string& address);
  Status RemovePeer(const std::string& host_id);
  nlohmann::json Peers();

  // Incoming holds go to `holds` (null: refused). REQUIRES: `holds` outlives this service or
  // is unset first.
  void SetIncomingHolds(IncomingHolds* holds) { incoming_holds_.store(holds); }
  // A new link to known peer `host_id`, its certificate checked to carry that id.
  Result<std::unique_ptr<PeerLink>> ConnectToHost(const std::string& host_id,
                                                  std::chrono::milliseconds timeout);
  // Asks `to` whether it holds the hold transfer `id` of `vm` sent ("hold-query").
  Result<SettledState> AskAboutHold(const std::string& to, const std::string& id,
                                    const std::string& vm);
  // What this host accepts as a destination (for holds, checked as for a migration).
  const MigrationConfig& config() const { return config_; }

  // This host as its certificate says, and the bound peer port (0 when not listening).
  const crypto::HostIdentity& self() const { return tls_->self(); }
  uint16_t port() const { return listener_ ? listener_->port() : 0; }

 private:
  MigrationService(vm::VmService& vms, registry::Registry& registry, MigrationConfig config,
                   std::shared_ptr<const PeerTlsContext> tls);
  class MigrationSource;  // one outgoing migration, phase by phase (migration_source.h)
  // Runs one outgoing migration on the operation's thread; `op` ends with its outcome.
  void RunSource(const MigrateRequest& request, const std::shared_ptr<Operation>& op);
  void ServeIncoming(std::shared_ptr<PeerLink> link);
  // ServeIncoming's requests other than a migration (query, hold-query, disk-link, hold-prepare),
  // each served to its end: true when `message` was one of them (the link is closed then).
  bool ServeBesideMigration(const std::shared_ptr<PeerLink>& link, const PeerMessage& message);
  // ServeIncoming's "prepare": the checks, then the VM created with the stream as its restore.
  void ReceiveMigration(const std::shared_ptr<PeerLink>& link, const PrepareRequest& prepare);

  // Recovery and settling (migration_recovery.cc; migration_protocol.h "Recovery").
  // Records the phase of outgoing migration `id`; an error when the registry refuses it (the
  // caller then aborts: an unjournaled migration could not be recovered after a restart).
  Status Journal(const std::string& id, const std::string& vm, const std::string& to,
                 JournalPhase phase);
  void Unjournal(const std::string& id);
  std::string PeerAddress(const std::string& host_id);  // "" if not a known peer
  static void RollBack(vm::VmRuntime& rt, const std::string& vm);
  // RollBack on this host's copy, under a lease of the VM taken for `op_id`.
  Status RollBackHere(const std::string& vm, const std::string& op_id);
  // kRunning / kAbsent / kUnsettled as the destination answers.
  Result<SettledState> AskDestination(const std::string& to, const std::string& id,
                                      const std::string& vm);
  // Sends `query` to `to` on a new link and returns the "state" it answers.
  Result<SettledState> Ask(const std::string& to, const PeerMessage& query);
  // Asks until `deadline`; on kRunning deletes the copy here, on kAbsent resumes it. Never
  // kUnsettled: an unsettled answer is asked again until the deadline, then an error.
  Result<SettledState> Settle(const std::string& id, const std::string& vm, const std::string& to,
                              std::chrono::steady_clock::time_point deadline);
  // Settle, retried until answered; `op` (may be null) ends with the outcome.
  void SettleInBackground(const std::string& id, const std::string& vm, const std::string& to,
                          std::shared_ptr<Operation> op);
  void RecoverOnStart();
  void AnswerQuery(PeerLink& link, const QueryRequest& query);

  vm::VmService& vms_;
  PeerTable peers_;
  JournalTable journal_;
  const MigrationConfig config_;
  const std::shared_ptr<const PeerTlsContext> tls_;
  std::unique_ptr<PeerListener> listener_;
  std::mutex mu_;  // guards cancels_, settling_
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> cancels_;
  int settling_ = 0;  // background settles running; the destructor waits for them
  std::condition_variable settled_cv_;
  std::atomic<bool> stopping_{false};
  std::atomic<IncomingHolds*> incoming_holds_{nullptr};
  // Incoming disks waiting for their link (disk_export.h); shared with the restore steps, which
  // may outlive a link's thread.
  const std::shared_ptr<DiskExports> disk_exports_ = std::make_shared<DiskExports>();
};

}  // namespace ferry::migrate
