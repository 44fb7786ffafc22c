#include "api/api_server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_reply.h"
#include "core/guarded_thread.h"
#include "core/metrics.h"
#include "migrate/peer_address.h"

namespace ferry::api {

using nlohmann::json;

ApiServer::ApiServer(vm::VmService& service, snapshot::SnapshotService& snapshots,
                     snapshot::TemplateService& templates, migrate::MigrationService* migrations,
                     hold::HoldService* holds)
    : service_(service),
      snapshots_(snapshots),
      templates_(templates),
      migrations_(migrations),
      holds_(holds),
      server_(std::make_unique<httplib::Server>()) {
  Routes();
  SnapshotRoutes();
  TemplateRoutes();
  MigrationRoutes();
  HoldRoutes();
  TelemetryRoutes();
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start(const std::string& socket_path) {
  ::unlink(socket_path.c_str());
  server_->set_address_family(AF_UNIX);
  // Bind under a restrictive umask so the socket is never briefly open to others.
  mode_t old = ::umask(0177);
  bool bound = server_->bind_to_port(socket_path, 80);
  ::umask(old);
  if (!bound) return Status::Unavailable("cannot listen on API socket " + socket_path);
  ::chmod(socket_path.c_str(), 0600);
  FERRY_ASSIGN_OR_RETURN(thread_, StartGuardedThread("API server on " + socket_path,
                                                     [this] { server_->listen_after_bind(); }));
  return Status::Ok();
}

Status ApiServer::ServeMetrics(const std::string& address) {
  auto parsed = migrate::ParsePeerAddress(address);
  if (!parsed.ok()) {
    return Status::InvalidArgument("--metrics-listen " + address + ": " + parsed.status().message());
  }
  metrics_server_ = std::make_unique<httplib::Server>();
  metrics_server_->Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics::Default().Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!metrics_server_->bind_to_port(parsed->host, parsed->port)) {
    return Status::Unavailable("cannot listen for metrics on " + address +
                               " (in use, or not an address of this host)");
  }
  FERRY_ASSIGN_OR_RETURN(metrics_thread_,
                         StartGuardedThread("metrics on " + address,
                                            [this] { metrics_server_->listen_after_bind(); }));
  return Status::Ok();
}

void ApiServer::Stop() {
  stopping_.store(true);  // event streams end within a second
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (metrics_server_) metrics_server_->stop();
  if (metrics_thread_.joinable()) metrics_thread_.join();
}

}  // namespace ferry::api
