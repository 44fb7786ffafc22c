// MigrationService: live migration of this host's VMs to peers, and of peers' VMs to this host,
// over authenticated peer links (migration_protocol.h). It owns the peer port (a PeerListener)
// and the peer table (registry objects of kind "peer": name -> address).
//
// Thread-safety: all public methods may be called from any thread. Each outgoing migration runs
// on a background thread of the VM service; each incoming one on its link's thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "core/operation.h"
#include "core/status.h"
#include "crypto/host_credentials.h"
#include "migrate/peer_listener.h"
#include "migrate/peer_tls.h"
#include "vm/vm_service.h"

namespace ferry::migrate {

struct MigrationConfig {
  std::string listen;   // "10.0.0.2:7400"; "" = no peer port (this host only sends)
  std::string tls_dir;  // host.key, host.crt, ca.crt from `ferry host enroll`
  int default_downtime_ms = 50;
};

struct MigrateRequest {
  std::string vm;
  std::string to;       // a peer's host id
  int downtime_ms = 0;  // 0: the configured default
};

class MigrationService {
 public:
  // Loads the host's credentials (refusing a key others can read) and opens the peer port.
  static Result<std::unique_ptr<MigrationService>> Start(vm::VmService& vms,
                                                         MigrationConfig config);
  ~MigrationService();

  Result<std::shared_ptr<Operation>> Migrate(const MigrateRequest& request);
  Status Cancel(const std::string& operation_id);
  nlohmann::json List();

  Status AddPeer(const std::string& host_id, const std::string& address);
  Status RemovePeer(const std::string& host_id);
  nlohmann::json Peers();

  // This host as its certificate says, and the bound peer port (0 when not listening).
  const crypto::HostIdentity& self() const { return tls_->self(); }
  uint16_t port() const { return listener_ ? listener_->port() : 0; }

 private:
  MigrationService(vm::VmService& vms, MigrationConfig config,
                   std::shared_ptr<const PeerTlsContext> tls);
  void RunSource(const MigrateRequest& request, const std::shared_ptr<Operation>& op);
  void ServeIncoming(std::shared_ptr<PeerLink> link);

  vm::VmService& vms_;
  const MigrationConfig config_;
  const std::shared_ptr<const PeerTlsContext> tls_;
  std::unique_ptr<PeerListener> listener_;
  std::mutex mu_;  // guards cancels_
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> cancels_;
};

}  // namespace ferry::migrate
