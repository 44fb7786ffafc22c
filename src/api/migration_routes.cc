// Routes over live migrations and this host's peers.
#include "api/api_server.h"

#include <httplib.h>

#include <limits>

#include "api/api_reply.h"
#include "core/json_fields.h"

namespace ferry::api {

using nlohmann::json;

void ApiServer::MigrationRoutes() {
  httplib::Server& s = *server_;
  // Every route needs this host's peer identity.
  auto need = [this](httplib::Response& res) {
    if (migrations_) return true;
    ReplyError(res, Status::FailedPrecondition(
                        "this ferryd has no peer identity: start it with --tls-dir DIR (from "
                        "ferry host enroll) and --listen ADDRESS:PORT"));
    return false;
  };
  s.Get("/v1/peers", [this, need](const httplib::Request&, httplib::Response& res) {
    if (need(res)) Reply(res, 200, {{"peers", migrations_->Peers()}, {"self", migrations_->self().host_id}});
  });
  s.Post("/v1/peers", [this, need](const httplib::Request& req, httplib::Response& res) {
    if (!need(res)) return;
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    JsonFields f = Fields(*body);
    auto host_id = f.String("host_id", "");
    if (!host_id.ok()) return ReplyError(res, host_id.status());
    auto address = f.String("address", "");
    if (!address.ok()) return ReplyError(res, address.status());
    Status st = migrations_->AddPeer(*host_id, *address);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 201, {{"host_id", *host_id}, {"address", *address}});
  });
  s.Delete(R"(/v1/peers/([^/]+))", [this, need](const httplib::Request& req, httplib::Response& res) {
    if (!need(res)) return;
    Status st = migrations_->RemovePeer(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"deleted", req.matches[1]}});
  });
  s.Post("/v1/migrations", [this, need](const httplib::Request& req, httplib::Response& res) {
    if (!need(res)) return;
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    migrate::MigrateRequest m;
    JsonFields f = Fields(*body);
    auto vm = f.String("vm", "");
    auto to = f.String("to", "");
    auto downtime = f.Int("downtime_ms", 0);
    for (const Status& st : {vm.status(), to.status(), downtime.status()}) {
      if (!st.ok()) return ReplyError(res, st);
    }
    if (*downtime < 0 || *downtime > std::numeric_limits<int>::max()) {
      return ReplyError(res, Status::InvalidArgument("downtime_ms must be 0 or more"));
    }
    m.vm = *vm;
    m.to = *to;
    m.downtime_ms = static_cast<int>(*downtime);
    ReplyOperation(res, migrations_->Migrate(m));
  });
  s.Get("/v1/migrations", [this, need](const httplib::Request&, httplib::Response& res) {
    if (need(res)) Reply(res, 200, {{"migrations", migrations_->List()}});
  });
  s.Get(R"(/v1/migrations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto op = service_.operations().Get(req.matches[1]);
    if (!op.ok()) return ReplyError(res, op.status());
    Reply(res, 200, (*op)->ToJson());
  });
  s.Post(R"(/v1/migrations/([^/]+)/cancel)", [this, need](const httplib::Request& req,
                                                          httplib::Response& res) {
    if (!need(res)) return;
    Status st = migrations_->Cancel(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 202, {{"cancelling", req.matches[1]}});
  });
}

}  // namespace ferry::api
