// Routes over snapshots and templates (clones are made from either).
#include "api/api_server.h"

#include <httplib.h>

#include <limits>

#include "api/api_reply.h"
#include "core/json_fields.h"

namespace ferry::api {

using nlohmann::json;

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

}  // namespace ferry::api
