// ferryd's API: JSON over HTTP on a UNIX socket that only root (or the socket's owner) can open.
// docs/api.md describes every route. Long operations answer 202 with an operation to follow.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "core/status.h"
#include "hold/hold_service.h"
#include "migrate/migration_service.h"
#include "snapshot/snapshot_service.h"
#include "snapshot/template_service.h"
#include "vm/vm_service.h"

namespace httplib {
class Server;
}

namespace ferry::api {

class ApiServer {
 public:
  // `migrations` and `holds` are null when this ferryd has no host identity (no --tls-dir): a
  // hold's manifest is signed with the host's key.
  ApiServer(vm::VmService& service, snapshot::SnapshotService& snapshots,
            snapshot::TemplateService& templates, migrate::MigrationService* migrations,
            hold::HoldService* holds = nullptr);
  ~ApiServer();

  // Binds SOCKET_PATH (mode 0600) and serves on a background thread.
  Status Start(const std::string& socket_path);
  void Stop();

 private:
  void Routes();

  void SnapshotRoutes();
  void TemplateRoutes();
  void MigrationRoutes();
  void HoldRoutes();

  vm::VmService& service_;
  snapshot::SnapshotService& snapshots_;
  snapshot::TemplateService& templates_;
  migrate::MigrationService* migrations_;
  hold::HoldService* holds_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// HTTP status for a Status code (exposed for tests).
int HttpStatusFor(const Status& status);

// A request's body as the routes read it: empty is {}, anything but a JSON object is
// InvalidArgument (exposed for fuzz/).
Result<nlohmann::json> ParseRequestBody(std::string_view body);

}  // namespace ferry::api
