// Replies in the API's shape, and checked reads of a request (docs/api.md).
#include "api/api_reply.h"

#include "api/api_server.h"

#include <httplib.h>

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

JsonFields Fields(const json& body) {
  // Body() only returns objects, so this cannot fail.
  return std::move(JsonFields::Of(body, "request body", Status::Code::kInvalidArgument)).value();
}

bool Flag(const httplib::Request& req, const json& body, const std::string& key) {
  if (body.contains(key) && body[key].is_boolean()) return body[key].get<bool>();
  return req.has_param(key) && (req.get_param_value(key) == "1" || req.get_param_value(key) == "true");
}

Result<std::vector<vm::PortForwardSpec>> Forwards(const JsonFields& fields) {
  std::vector<vm::PortForwardSpec> forwards;
  if (!fields.Has("forwards")) return forwards;
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> wanted, fields.Strings("forwards"));
  for (const auto& f : wanted) {
    FERRY_ASSIGN_OR_RETURN(vm::PortForwardSpec fwd, vm::ParseForward(f));
    forwards.push_back(fwd);
  }
  return forwards;
}

}  // namespace ferry::api
