// How every route answers and reads its request: replies in the API's JSON shape (errors as
// {"error": {"code", "message"}} with the HTTP status of their Status code, long operations as
// 202 with the operation to follow), request bodies parsed at the edge. Internal to src/api/.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/json_fields.h"
#include "core/operation.h"
#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::api {

void Reply(httplib::Response& res, int code, const nlohmann::json& body);
void ReplyError(httplib::Response& res, const Status& st);
void ReplyOperation(httplib::Response& res, const Result<std::shared_ptr<Operation>>& op);
// The request's body: {} when empty, InvalidArgument unless a JSON object (ParseRequestBody).
Result<nlohmann::json> Body(const httplib::Request& req);
// Checked reads of a request body; errors are the caller's to fix (InvalidArgument).
JsonFields Fields(const nlohmann::json& body);
// A boolean from the body, or else from the query string ("1" or "true").
bool Flag(const httplib::Request& req, const nlohmann::json& body, const std::string& key);
// A body's optional "forwards": ["HOST:GUEST", ...] (none when absent).
Result<std::vector<vm::PortForwardSpec>> Forwards(const JsonFields& fields);

}  // namespace ferry::api
