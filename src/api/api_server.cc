#include "api/api_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits>

#include "core/event_log.h"
#include "core/guarded_thread.h"
#include "core/metrics.h"
#include "migrate/peer_address.h"
#include "core/json_fields.h"
#include "core/untrusted_json.h"

namespace ferry::api {

using nlohmann::json;

namespace {
// Bodies are small requests (a VM spec at most); the bound is against a broken client.
constexpr size_t kMaxBodyBytes = size_t{1} << 20;
}  // namespace

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kAlreadyExists: return 409;
    case Status::Code::kFailedPrecondition: return 409;
    case Status::Code::kResourceExhausted: return 507;
    case Status::Code::kCorruption: return 422;
    case Status::Code::kUnavailable: return 503;
    case Status::Code::kDeadlineExceeded: return 504;
    case Status::Code::kInternal: return 500;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kCancelled: return 409;
  }
  return 500;
}

Result<json> ParseRequestBody(std::string_view body) {
  if (body.empty()) return json::object();
  auto j = ParseUntrustedJson(body, "request body", JsonLimits{kMaxBodyBytes});
  if (!j.ok()) return Status::InvalidArgument(j.status().message());
  if (!j->is_object()) return Status::InvalidArgument("request body is not a JSON object");
  return j;
}

namespace {

void Reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  // Replies carry guest-reported strings, which may be invalid UTF-8: replaced, never thrown on.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                  "application/json");
}

void ReplyError(httplib::Response& res, const Status& st) {
  Reply(res, HttpStatusFor(st), {{"error", {{"code", st.CodeName()}, {"message", st.message()}}}});
}

void ReplyOperation(httplib::Response& res, const Result<std::shared_ptr<Operation>>& op) {
  if (!op.ok()) return ReplyError(res, op.status());
  Reply(res, 202, {{"operation", (*op)->ToJson()}});
}

Result<json> Body(const httplib::Request& req) { return ParseRequestBody(req.body); }

// Checked reads of a request body; errors are the caller's to fix (InvalidArgument).
JsonFields Fields(const json& body) {
  // Body() only returns objects, so this cannot fail.
  return std::move(JsonFields::Of(body, "request body", Status::Code::kInvalidArgument)).value();
}

bool Flag(const httplib::Request& req, const json& body, const std::string& key) {
  if (body.contains(key) && body[key].is_boolean()) return body[key].get<bool>();
  return req.has_param(key) && (req.get_param_value(key) == "1" || req.get_param_value(key) == "true");
}

}  // namespace

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

EventStreamStart StartEventStream(uint64_t since, uint64_t newest) {
  EventStreamStart start;
  start.since = since;
  if (since > newest) {
    start.since = 0;
    start.notice = json{{"type", "events.restarted"},
                        {"since", since},
                        {"message", "ferryd restarted since event " + std::to_string(since) +
                                        "; its events are numbered from 1 again, and the stream "
                                        "starts with the oldest event kept"}}
                       .dump();
  }
  return start;
}

std::string EventsLostLine(uint64_t since, uint64_t first_kept) {
  return json{{"type", "events.lost"},
              {"since", since},
              {"first_kept", first_kept},
              {"message", "events " + std::to_string(since + 1) + " to " +
                              std::to_string(first_kept - 1) + " are gone (ferryd keeps the " +
                              std::to_string(EventLog::kDefaultCapacity) +
                              " newest); following from " + std::to_string(first_kept)}}
      .dump();
}

void ApiServer::TelemetryRoutes() {
  httplib::Server& s = *server_;
  s.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics::Default().Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // A long-lived stream of JSON lines (chunked), from the event after `since` (default: only
  // what happens from now on). It ends when the client goes or ferryd stops.
  s.Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    EventLog& log = Events();
    uint64_t since = log.last_seq();
    if (req.has_param("since")) {
      auto parsed = ParseEventSince(req.get_param_value("since"));
      if (!parsed.ok()) return ReplyError(res, parsed.status());
      since = *parsed;
    }
    auto start = std::make_shared<EventStreamStart>(StartEventStream(since, log.last_seq()));
    res.status = 200;
    res.set_chunked_content_provider(
        "application/x-ndjson", [this, start, &log](size_t, httplib::DataSink& sink) {
          if (!start->notice.empty()) {
            std::string line = start->notice + "\n";
            start->notice.clear();
            if (!sink.write(line.data(), line.size())) return false;
          }
          EventLog::Batch b = log.Read(start->since, 256, std::chrono::milliseconds(1000));
          if (log.closed() || stopping_.load()) {
            sink.done();
            return true;
          }
          std::string out;
          if (b.gap_from) out += EventsLostLine(start->since, *b.gap_from) + "\n";
          for (const auto& l : b.lines) out += l + "\n";
          start->since = b.last_seq;
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          return sink.is_writable();
        });
  });
}

void ApiServer::HoldRoutes() {
  httplib::Server& s = *server_;
  auto need = [this](httplib::Response& res) {
    if (holds_) return true;
    ReplyError(res, Status::FailedPrecondition(
                        "this ferryd keeps no holds: a hold's manifest is signed with the "
                        "host's key; start ferryd with --tls-dir DIR (from ferry host enroll)"));
    return false;
  };
  auto reply = [](httplib::Response& res, const Result<json>& r) {
    if (!r.ok()) return ReplyError(res, r.status());
    Reply(res, 200, *r);
  };
  s.Get("/v1/holds", [this, need](const httplib::Request&, httplib::Response& res) {
    if (need(res)) Reply(res, 200, {{"holds", holds_->List()}});
  });
  s.Post("/v1/holds", [this, need](const httplib::Request& req, httplib::Response& res) {
    if (!need(res)) return;
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    auto vm = Fields(*body).String("vm");
    if (!vm.ok()) return ReplyError(res, vm.status());
    ReplyOperation(res, holds_->Hold(*vm));
  });
  s.Get(R"(/v1/holds/([^/]+))", [this, need, reply](const httplib::Request& req,
                                                    httplib::Response& res) {
    if (need(res)) reply(res, holds_->Show(req.matches[1]));
  });
  s.Delete(R"(/v1/holds/([^/]+))", [this, need](const httplib::Request& req,
                                                httplib::Response& res) {
    if (!need(res)) return;
    Status st = holds_->Delete(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"shredded", req.matches[1]}});
  });
  s.Post(R"(/v1/holds/([^/]+)/restore)", [this, need](const httplib::Request& req,
                                                      httplib::Response& res) {
    if (!need(res)) return;
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    ReplyOperation(res, holds_->Restore(req.matches[1], Flag(req, *body, "wait_ready")));
  });
  s.Post(R"(/v1/holds/([^/]+)/send)", [this, need](const httplib::Request& req,
                                                   httplib::Response& res) {
    if (!need(res)) return;
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    auto to = Fields(*body).String("to");
    if (!to.ok()) return ReplyError(res, to.status());
    ReplyOperation(res, holds_->Send(req.matches[1], *to));
  });
  s.Get("/v1/store", [this, need, reply](const httplib::Request&, httplib::Response& res) {
    if (need(res)) reply(res, holds_->StoreShow());
  });
  s.Post("/v1/store/verify", [this, need, reply](const httplib::Request&, httplib::Response& res) {
    if (need(res)) reply(res, holds_->StoreVerify());
  });
  s.Post("/v1/store/collect", [this, need, reply](const httplib::Request&,
                                                  httplib::Response& res) {
    if (need(res)) reply(res, holds_->StoreCollect());
  });
}

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

void ApiServer::TemplateRoutes() {
  auto& s = *server_;
  s.Get("/v1/templates", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"templates", templates_.List()}});
  });
  s.Post("/v1/templates", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    JsonFields f = Fields(*body);
    auto name_field = f.String("name", "");
    if (!name_field.ok()) return ReplyError(res, name_field.status());
    const std::string name = *name_field;
    if (body->contains("from_snapshot")) {
      auto from = f.String("from_snapshot");
      if (!from.ok()) return ReplyError(res, from.status());
      Status st = templates_.CreateFromSnapshot(name, *from);
      if (!st.ok()) return ReplyError(res, st);
      auto shown = templates_.Show(name);
      return Reply(res, 201, shown.ok() ? *shown : json::object());
    }
    if (!body->contains("spec") || !(*body)["spec"].is_object()) {
      return ReplyError(res, Status::InvalidArgument(
                                 "a template needs \"from_snapshot\" or a VM \"spec\""));
    }
    ReplyOperation(res, templates_.CreateFromSpec(name, (*body)["spec"]));
  });
  s.Get(R"(/v1/templates/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto t = templates_.Show(req.matches[1]);
    if (!t.ok()) return ReplyError(res, t.status());
    Reply(res, 200, *t);
  });
  s.Delete(R"(/v1/templates/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Status st = templates_.Delete(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"deleted", req.matches[1]}});
  });
  s.Put(R"(/v1/templates/([^/]+)/pool)", [this](const httplib::Request& req,
                                                httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    auto size = Fields(*body).Int("size");
    if (!size.ok() || *size < 0 || *size > std::numeric_limits<int>::max()) {
      return ReplyError(res, Status::InvalidArgument("pool needs {\"size\": N}, N from 0"));
    }
    Status st = templates_.SetPoolSize(req.matches[1], static_cast<int>(*size));
    if (!st.ok()) return ReplyError(res, st);
    auto t = templates_.Show(req.matches[1]);
    Reply(res, 200, t.ok() ? *t : json::object());
  });
}

void ApiServer::SnapshotRoutes() {
  auto& s = *server_;
  s.Get("/v1/snapshots", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"snapshots", snapshots_.List()}});
  });
  s.Post("/v1/snapshots", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!body->contains("vm") || !(*body)["vm"].is_string() || !body->contains("name") ||
        !(*body)["name"].is_string()) {
      return ReplyError(res, Status::InvalidArgument("a snapshot needs \"vm\" and \"name\""));
    }
    ReplyOperation(res, snapshots_.Create((*body)["vm"], (*body)["name"]));
  });
  s.Get(R"(/v1/snapshots/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto snap = snapshots_.Show(req.matches[1]);
    if (!snap.ok()) return ReplyError(res, snap.status());
    Reply(res, 200, *snap);
  });
  s.Delete(R"(/v1/snapshots/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Status st = snapshots_.Delete(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"deleted", req.matches[1]}});
  });
  s.Post(R"(/v1/snapshots/([^/]+)/clone)", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    snapshot::CloneRequest clone;
    clone.snapshot = req.matches[1];
    try {
      clone.count = body->value("count", 1);
      clone.names = body->value("names", std::vector<std::string>{});
      clone.ip = body->value("ip", std::string());
      for (const auto& f : body->value("forwards", std::vector<std::string>{})) {
        auto fwd = vm::ParseForward(f);
        if (!fwd.ok()) return ReplyError(res, fwd.status());
        clone.forwards.push_back(*fwd);
      }
    } catch (const nlohmann::json::exception&) {
      return ReplyError(res, Status::InvalidArgument(
                                 "clone takes {\"count\": N, \"names\": [...], "
                                 "\"forwards\": [\"HOST:GUEST\"], \"ip\": \"A.B.C.D/P\"}"));
    }
    if (clone.names.size() > 0 && !body->contains("count")) {
      clone.count = static_cast<int>(clone.names.size());
    }
    ReplyOperation(res, snapshots_.Clone(clone));
  });
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Routes() {
  VmRoutes();
  VmControlRoutes();
  GuestRoutes();
  OperationRoutes();
  ErrorHandlers();
}

// A clone of the template, from its warm pool when a QEMU waits there.
void ApiServer::CreateFromTemplate(const json& body, httplib::Response& res) {
  JsonFields fields = Fields(body);
  auto name = fields.String("name", "");
  auto from = fields.String("template");
  auto ip = fields.String("ip", "");
  auto wanted = fields.Has("forwards")
                    ? fields.Strings("forwards")
                    : Result<std::vector<std::string>>(std::vector<std::string>{});
  for (const Status& st : {name.status(), from.status(), wanted.status(), ip.status()}) {
    if (!st.ok()) return ReplyError(res, st);
  }
  std::vector<vm::PortForwardSpec> forwards;
  for (const auto& f : *wanted) {
    auto fwd = vm::ParseForward(f);
    if (!fwd.ok()) return ReplyError(res, fwd.status());
    forwards.push_back(*fwd);
  }
  ReplyOperation(res, templates_.CreateVm(*name, *from, forwards, *ip));
}

// The host, and VMs created, listed, shown and deleted.
void ApiServer::VmRoutes() {
  auto& s = *server_;
  s.Get("/v1/host", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, service_.HostInfo());
  });
  s.Get("/v1/vms", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"vms", service_.List()}});
  });
  s.Post("/v1/vms", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    bool wait_ready = Flag(req, *body, "wait_ready");
    if (body->contains("template")) return CreateFromTemplate(*body, res);
    json spec = body->contains("spec") ? (*body)["spec"] : *body;
    if (spec.is_object()) spec.erase("wait_ready");
    ReplyOperation(res, service_.Create(spec, wait_ready));
  });
  s.Get(R"(/v1/vms/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto vm = service_.Show(req.matches[1]);
    if (!vm.ok()) return ReplyError(res, vm.status());
    Reply(res, 200, *vm);
  });
  s.Delete(R"(/v1/vms/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Status st = service_.Delete(req.matches[1], Flag(req, json::object(), "force"));
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 200, {{"deleted", req.matches[1]}});
  });
}

// A VM paused, resumed, started, stopped, or given its owner's policy.
void ApiServer::VmControlRoutes() {
  auto& s = *server_;
  s.Post(R"(/v1/vms/([^/]+)/(pause|resume))",
         [this](const httplib::Request& req, httplib::Response& res) {
           auto vm = req.matches[2] == "pause" ? service_.Pause(req.matches[1])
                                               : service_.Resume(req.matches[1]);
           if (!vm.ok()) return ReplyError(res, vm.status());
           Reply(res, 200, *vm);
         });
  s.Post(R"(/v1/vms/([^/]+)/policy)", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!body->contains("policy") || !(*body)["policy"].is_string()) {
      return ReplyError(res, Status::InvalidArgument("the body needs \"policy\": the text of a "
                                                     "signed policy document"));
    }
    auto vm = service_.SetPolicy(req.matches[1], (*body)["policy"].get<std::string>());
    if (!vm.ok()) return ReplyError(res, vm.status());
    Reply(res, 200, *vm);
  });
  s.Post(R"(/v1/vms/([^/]+)/start)", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    ReplyOperation(res, service_.Start(req.matches[1], Flag(req, *body, "wait_ready")));
  });
  s.Post(R"(/v1/vms/([^/]+)/stop)", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    vm::StopOptions opts;
    opts.force = Flag(req, *body, "force");
    if (body->contains("timeout_s")) {
      if (!(*body)["timeout_s"].is_number_unsigned()) {
        return ReplyError(res, Status::InvalidArgument("timeout_s must be a whole number of seconds"));
      }
      opts.timeout = std::chrono::seconds((*body)["timeout_s"].get<uint64_t>());
    }
    ReplyOperation(res, service_.Stop(req.matches[1], opts));
  });
}

// What a VM's console printed, and requests to its guest agent.
void ApiServer::GuestRoutes() {
  auto& s = *server_;
  s.Get(R"(/v1/vms/([^/]+)/console)", [this](const httplib::Request& req, httplib::Response& res) {
    size_t bytes = 64 * 1024;
    if (req.has_param("bytes")) bytes = std::strtoull(req.get_param_value("bytes").c_str(), nullptr, 10);
    auto text = service_.Console(req.matches[1], bytes);
    if (!text.ok()) return ReplyError(res, text.status());
    res.status = 200;
    res.set_content(*text, "text/plain");
  });
  s.Get(R"(/v1/vms/([^/]+)/guest/urandom)", [this](const httplib::Request& req,
                                                    httplib::Response& res) {
    int bytes = 32;
    if (req.has_param("bytes")) bytes = std::atoi(req.get_param_value("bytes").c_str());
    auto r = service_.GuestRandom(req.matches[1], bytes);
    if (!r.ok()) return ReplyError(res, r.status());
    Reply(res, 200, *r);
  });
  s.Post(R"(/v1/vms/([^/]+)/guest/ballast)", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    auto mib = Fields(*body).Uint("mib");
    if (!mib.ok()) return ReplyError(res, mib.status());
    auto r = service_.GuestBallast(req.matches[1], *mib);
    if (!r.ok()) return ReplyError(res, r.status());
    Reply(res, 200, *r);
  });
}

void ApiServer::OperationRoutes() {
  auto& s = *server_;
  s.Get("/v1/operations", [this](const httplib::Request&, httplib::Response& res) {
    json ops = json::array();
    for (auto& op : service_.operations().List()) ops.push_back(op->ToJson());
    Reply(res, 200, {{"operations", ops}});
  });
  s.Get(R"(/v1/operations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto op = service_.operations().Get(req.matches[1]);
    if (!op.ok()) return ReplyError(res, op.status());
    // ?wait_ms=N blocks until the operation ends or N ms pass: clients follow without busy polling.
    if (req.has_param("wait_ms")) {
      int64_t wait = std::strtoll(req.get_param_value("wait_ms").c_str(), nullptr, 10);
      (*op)->WaitDone(std::min<int64_t>(std::max<int64_t>(wait, 0), 30000));
    }
    Reply(res, 200, {{"operation", (*op)->ToJson()}});
  });
}

// An unknown route and a handler that threw both answer in the API's error shape.
void ApiServer::ErrorHandlers() {
  auto& s = *server_;
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) {
      ReplyError(res, Status::NotFound("no API route " + req.method + " " + req.path +
                                       "; see docs/api.md"));
    }
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(res, Status::Internal("ferryd failed to handle the request: " + what));
  });
}

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
