// Routes over holds and the store that keeps them.
#include "api/api_server.h"

#include <httplib.h>

#include "api/api_reply.h"

namespace ferry::api {

using nlohmann::json;

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
    hold::RestoreOptions options;
    options.wait_ready = Flag(req, *body, "wait_ready");
    if (Fields(*body).Has("forwards")) {
      auto forwards = Forwards(Fields(*body));
      if (!forwards.ok()) return ReplyError(res, forwards.status());
      options.forwards = std::move(forwards).value();
    }
    ReplyOperation(res, holds_->Restore(req.matches[1], options));
  });
  // POST {"to": HOST} on `pattern`: `send(name, to)` starts the operation. A snapshot travels
  // through the store as a hold does, so the hold service sends both.
  using Send = Result<std::shared_ptr<Operation>> (hold::HoldService::*)(const std::string&,
                                                                         const std::string&);
  auto send_route = [this, need, &s](const char* pattern, Send send) {
    s.Post(pattern, [this, need, send](const httplib::Request& req, httplib::Response& res) {
      if (!need(res)) return;
      auto body = Body(req);
      if (!body.ok()) return ReplyError(res, body.status());
      auto to = Fields(*body).String("to");
      if (!to.ok()) return ReplyError(res, to.status());
      ReplyOperation(res, (holds_->*send)(req.matches[1], *to));
    });
  };
  send_route(R"(/v1/holds/([^/]+)/send)", &hold::HoldService::Send);
  send_route(R"(/v1/snapshots/([^/]+)/send)", &hold::HoldService::SendSnapshot);
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

}  // namespace ferry::api
