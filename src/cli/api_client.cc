#include "cli/api_client.h"

#include <httplib.h>
#include <sys/socket.h>

namespace ferry::cli {

using nlohmann::json;

ApiClient::ApiClient(std::string socket_path)
    : socket_path_(std::move(socket_path)), http_(std::make_unique<httplib::Client>(socket_path_)) {
  http_->set_address_family(AF_UNIX);
  http_->set_connection_timeout(5);
  // Long-polls on operations last up to 30 s server-side.
  http_->set_read_timeout(60);
}

ApiClient::~ApiClient() = default;

namespace {
// An API error object {"code": "not_found", "message": "..."} as a Status.
Status ErrorFrom(const json& error) {
  if (!error.is_object()) return Status::Internal("ferryd sent a malformed error");
  return Status::FromCode(Status::CodeFromName(error.value("code", "internal")),
                          error.value("message", "unknown error"));
}
}  // namespace

Status ApiClient::Unreachable(const std::string& why) const {
  return Status::Unavailable("cannot reach ferryd at " + socket_path_ + " (" + why +
                             "); start ferryd or point FERRY_SOCKET / --socket at its socket");
}

template <typename Res>
Result<json> ApiClient::Decode(const Res& res) {
  if (!res) return Unreachable(httplib::to_string(res.error()));
  json body = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (res->status >= 400) {
    if (body.is_object() && body.contains("error")) return ErrorFrom(body["error"]);
    return Status::Internal("ferryd answered HTTP " + std::to_string(res->status));
  }
  if (body.is_discarded()) return Status::Internal("ferryd sent a reply that is not JSON");
  return body;
}

Result<json> ApiClient::Get(const std::string& path) { return Decode(http_->Get(path)); }

Result<std::string> ApiClient::GetText(const std::string& path) {
  auto res = http_->Get(path);
  if (!res) return Unreachable(httplib::to_string(res.error()));
  if (res->status >= 400) {
    auto err = Decode(res);
    return err.ok() ? Status::Internal("HTTP " + std::to_string(res->status)) : err.status();
  }
  return res->body;
}

Result<json> ApiClient::Post(const std::string& path, const json& body) {
  return Decode(http_->Post(path, body.dump(), "application/json"));
}

Result<json> ApiClient::Put(const std::string& path, const json& body) {
  return Decode(http_->Put(path, body.dump(), "application/json"));
}

Result<json> ApiClient::Delete(const std::string& path) { return Decode(http_->Delete(path)); }

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
