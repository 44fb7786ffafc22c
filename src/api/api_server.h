// ferryd's API: JSON over HTTP on a UNIX socket that only root (or the socket's owner) can open.
// docs/api.md describes every route. Long operations answer 202 with an operation to follow.
#pragma once

#include <atomic>
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
struct Response;
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
  // Serves GET /metrics alone on TCP ADDRESS:PORT (for a Prometheus to scrape), on a background
  // thread of its own. Call after Start.
  Status ServeMetrics(const std::string& address);
  void Stop();

 private:
  void Routes();
  void VmRoutes();
  void VmControlRoutes();
  void GuestRoutes();
  void OperationRoutes();
  void ErrorHandlers();
  void CreateFromTemplate(const nlohmann::json& body, httplib::Response& res);

  void SnapshotRoutes();
  void TemplateRoutes();
  void MigrationRoutes();
  void HoldRoutes();
  void TelemetryRoutes();

  vm::VmService& service_;
  snapshot::SnapshotService& snapshots_;
  snapshot::TemplateService& templates_;
  migrate::MigrationService* migrations_;
  hold::HoldService* holds_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<httplib::Server> metrics_server_;
  std::thread metrics_thread_;
};

// The `ferry events` stream's lines for a reader that last saw `since`, with what it needs to say
// about events it can no longer have (one JSON line of type "events.lost" first). `newest` is the
// log's newest number: a `since` above it comes from before a restart of ferryd (numbers start
// again at 1), and the stream starts again from the oldest event kept. Exposed for tests.
struct EventStreamStart {
  uint64_t since = 0;
  std::string notice;  // "" or one line, without '\n'
};
EventStreamStart StartEventStream(uint64_t since, uint64_t newest);
std::string EventsLostLine(uint64_t since, uint64_t first_kept);

// HTTP status for a Status code (exposed for tests).
int HttpStatusFor(const Status& status);

// A request's body as the routes read it: empty is {}, anything but a JSON object is
// InvalidArgument (exposed for fuzz/).
Result<nlohmann::json> ParseRequestBody(std::string_view body);

}  // namespace ferry::api
