#include "cli/api_client.h"

namespace ferry::cli {

using nlohmann::json;

// UnixHttpClient's default timeouts: 5 s to connect, 60 s per read, as long-polls on operations
// last up to 30 s server-side.
ApiClient::ApiClient(std::string socket_path)
    : socket_path_(std::move(socket_path)), http_(std::make_unique<UnixHttpClient>(socket_path_)) {}

ApiClient::~ApiClient() = default;

namespace {
// An API error object {"code": "not_found", "message": "..."} as a Status.
Status ErrorFrom(const json& error) {
  if (!error.is_object()) return Status::Internal("ferryd sent a malformed error");
  return Status::FromCode(Status::CodeFromName(error.value("code", "internal")),
                          error.value("message", "unknown error"));
}
}  // namespace

// `why` comes from UnixHttpClient and names the socket already.
Status ApiClient::Unreachable(const std::string& why) const {
  return Status::Unavailable("cannot reach ferryd: " + why +
                             "; start ferryd or point FERRY_SOCKET / --socket at its socket");
}

Result<json> ApiClient::Decode(const Result<HttpResponse>& res) {
  if (!res.ok()) return Unreachable(res.status().message());
  json body = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (res->status >= 400) {
    if (body.is_object() && body.contains("error")) return ErrorFrom(body["error"]);
    return Status::Internal("ferryd answered HTTP " + std::to_string(res->status));
  }
  if (body.is_discarded()) return Status::Internal("ferryd sent a reply that is not JSON");
  return body;
}

Result<json> ApiClient::Get(const std::string& path) { return Decode(http_->Request("GET", path)); }

Result<std::string> ApiClient::GetText(const std::string& path) {
  auto res = http_->Request("GET", path);
  if (!res.ok()) return Unreachable(res.status().message());
  if (res->status >= 400) {
    auto err = Decode(res);
    return err.ok() ? Status::Internal("HTTP " + std::to_string(res->status)) : err.status();
  }
  return res->body;
}

Result<json> ApiClient::Post(const std::string& path, const json& body) {
  return Decode(http_->Request("POST", path, body.dump(), "application/json"));
}

Result<json> ApiClient::Put(const std::string& path, const json& body) {
  return Decode(http_->Request("PUT", path, body.dump(), "application/json"));
}

Result<json> ApiClient::Delete(const std::string& path) {
  return Decode(http_->Request("DELETE", path));
}

Result<json> ApiClient::Follow(const json& accepted,
                               const std::function<void(const json&)>& progress) {
  if (!accepted.contains("operation")) return Status::Internal("ferryd sent no operation");
  json op = accepted["operation"];
  while (op.value("state", "") == "running") {
    if (progress) progress(op);
    auto next = Get("/v1/operations/" + op.value("id", "") + "?wait_ms=500");
    if (!next.ok()) return next.status();
    op = (*next)["operation"];
  }
  if (progress) progress(op);
  if (op.value("state", "") == "failed") {
    return ErrorFrom(op.value("error", json::object()));
  }
  return op.value("result", json::object());
}

}  // namespace ferry::cli
