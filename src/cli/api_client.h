// The CLI's side of ferryd's API: HTTP over the UNIX socket, errors turned back into Status.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/unix_http_client.h"
#include "core/status.h"

namespace ferry::cli {

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path);
  ~ApiClient();

  Result<nlohmann::json> Get(const std::string& path);
  Result<std::string> GetText(const std::string& path);
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> Put(const std::string& path, const nlohmann::json& body);
  Result<nlohmann::json> Delete(const std::string& path);

  // Follows a 202 answer's operation until it ends; `progress` sees each update. Returns the
  // operation's result on success, its error otherwise.
  Result<nlohmann::json> Follow(const nlohmann::json& accepted,
                                const std::function<void(const nlohmann::json&)>& progress);

 private:
  Status Unreachable(const std::string& why) const;
  Result<nlohmann::json> Decode(const Result<HttpResponse>& res);

  std::string socket_path_;
  std::unique_ptr<UnixHttpClient> http_;
};

}  // namespace ferry::cli
