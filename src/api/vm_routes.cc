// Routes over VMs: created, shown, controlled, their guests asked; operations; errors.
#include "api/api_server.h"

#include <httplib.h>

#include "api/api_reply.h"
#include "core/json_fields.h"

namespace ferry::api {

using nlohmann::json;

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
  auto forwards = Forwards(fields);
  for (const Status& st : {name.status(), from.status(), forwards.status(), ip.status()}) {
    if (!st.ok()) return ReplyError(res, st);
  }
  ReplyOperation(res, templates_.CreateVm(*name, *from, *forwards, *ip));
}

// The host, and VMs created, listed, shown and deleted.
void ApiServer::VmRoutes() {
  auto& s = *server_;
  s.Get("/v1/host", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json host = service_.HostInfo();
    host["spare_qemu_pids"] = snapshots_.SparePids();  // QEMUs waiting for a plain clone
    Reply(res, 200, host);
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

}  // namespace ferry::api
