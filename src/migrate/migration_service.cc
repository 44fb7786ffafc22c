#include "migrate/migration_service.h"

#include <spdlog/spdlog.h>

#include "core/ids.h"
#include "migrate/destination_checks.h"
#include "migrate/peer_address.h"

namespace ferry::migrate {
namespace {


}  // namespace

Result<std::unique_ptr<MigrationService>> MigrationService::Start(vm::VmService& vms,
                                                                  registry::Registry& registry,
                                                                  MigrationConfig config) {
  FERRY_RETURN_IF_ERROR(CheckDestinationConfig(config));
  auto credentials = crypto::LoadHostCredentials(config.tls_dir);
  if (!credentials.ok()) return credentials.status().WithContext("peer TLS");
  FERRY_ASSIGN_OR_RETURN(auto tls, PeerTlsContext::Create(*credentials));
  std::unique_ptr<MigrationService> service(new MigrationService(vms, registry, config, tls));
  if (!config.listen.empty()) {
    MigrationService* self = service.get();
    auto listener = PeerListener::Start(
        config.listen, tls, [self](std::shared_ptr<PeerLink> link) { self->ServeIncoming(link); },
        {},
        [](const std::string& remote, const Status& why) {
          spdlog::warn("peer port: refused {}: {}", remote, why.message());
        });
    if (!listener.ok()) return listener.status().WithContext("peer port " + config.listen);
    service->listener_ = std::move(listener).value();
    spdlog::info("peer port {} (port {}) as host {}", config.listen, service->listener_->port(),
                 tls->self().host_id);
  }
  service->RecoverOnStart();
  return service;
}

MigrationService::MigrationService(vm::VmService& vms, registry::Registry& registry,
                                   MigrationConfig config,
                                   std::shared_ptr<const PeerTlsContext> tls)
    : vms_(vms),
      peers_(registry),
      journal_(registry),
      config_(std::move(config)),
      tls_(std::move(tls)) {}

MigrationService::~MigrationService() {
  stopping_.store(true);
  if (listener_) listener_->Stop();
  std::unique_lock<std::mutex> lock(mu_);
  settled_cv_.wait(lock, [this] { return settling_ == 0; });
}

Result<std::shared_ptr<Operation>> MigrationService::Migrate(const MigrateRequest& request) {
  FERRY_RETURN_IF_ERROR(ValidateName("vm", request.vm));
  if (request.to.empty()) return Status::InvalidArgument("migrate needs a destination host (--to)");
  if (request.to == tls_->self().host_id) {
    return Status::InvalidArgument("vm " + request.vm + " is already on host " + request.to);
  }
  FERRY_RETURN_IF_ERROR(vms_.Show(request.vm).status());
  auto op = vms_.operations().Start("migrate", request.vm);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_[op->id()] = std::make_shared<std::atomic<bool>>(false);
  }
  vms_.InBackground([this, request, op] { RunSource(request, op); });
  return op;
}

Status MigrationService::Cancel(const std::string& operation_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cancels_.find(operation_id);
  if (it == cancels_.end()) {
    return Status::NotFound("migration " + operation_id +
                            " is not an outgoing migration of "
                            "this host (list them with ferry migration list)");
  }
  it->second->store(true);
  return Status::Ok();
}

nlohmann::json MigrationService::List() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& op : vms_.operations().List()) {
    nlohmann::json j = op->ToJson();
    const std::string kind = j.value("kind", "");
    if (kind == "migrate" || kind == "migrate-in") out.push_back(j);
  }
  return out;
}

Status MigrationService::AddPeer(const std::string& host_id, const std::string& address) {
  FERRY_RETURN_IF_ERROR(ValidateName("host", host_id));
  auto parsed = ParsePeerAddress(address);
  if (!parsed.ok()) return parsed.status().WithContext("peer " + host_id);
  return peers_.Insert(host_id, PeerRow{parsed->ToString()});
}

Status MigrationService::RemovePeer(const std::string& host_id) { return peers_.Delete(host_id); }

nlohmann::json MigrationService::Peers() {
  nlohmann::json out = nlohmann::json::array();
  auto all = peers_.List([](const Status&) { return true; });  // a damaged row is not listed
  if (!all.ok()) return out;
  for (const auto& [name, row] : *all) {
    out.push_back({{"host_id", name}, {"address", row.address}});
  }
  return out;
}

}  // namespace ferry::migrate
