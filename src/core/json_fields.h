// Checked, typed reads of one JSON object that came from outside ferryd (a guest, QEMU, a peer, an
// API client). nlohmann's value(), get() and operator[] throw or assert when a member has another
// type than expected; code reading untrusted JSON uses this instead, and every error names the
// member and where the object came from: `guest ping reply of vm web-1: member "ready" must be a
// boolean, not a string`.
//
// A JsonFields refers to the object it reads: keep the object alive while it is used.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry {

class JsonFields {
 public:
  // Fails when `value` is not an object. `source` names it in errors ("guest ping reply of vm
  // web-1"); `code` is the code of every error (kCorruption for data from a peer, guest or QEMU;
  // kInvalidArgument for a request's body, which the caller can fix).
  static Result<JsonFields> Of(const nlohmann::json& value, std::string source,
                               Status::Code code = Status::Code::kCorruption);

  // Required members: an error when absent or of another type.
  Result<std::string> String(std::string_view key) const;
  Result<bool> Bool(std::string_view key) const;
  // An integer that fits int64_t / uint64_t; a fraction or a float is refused.
  Result<int64_t> Int(std::string_view key) const;
  Result<uint64_t> Uint(std::string_view key) const;
  // Any JSON number.
  Result<double> Number(std::string_view key) const;
  Result<JsonFields> Object(std::string_view key) const;
  // The member itself, when it must be an array; its elements are not checked.
  Result<const nlohmann::json*> Array(std::string_view key) const;
  // An array whose every element is a string / an object.
  Result<std::vector<std::string>> Strings(std::string_view key) const;
  Result<std::vector<JsonFields>> Objects(std::string_view key) const;

  // Optional members: `fallback` when absent or null, an error when of another type.
  Result<std::string> String(std::string_view key, std::string fallback) const;
  Result<bool> Bool(std::string_view key, bool fallback) const;
  Result<int64_t> Int(std::string_view key, int64_t fallback) const;
  Result<double> Number(std::string_view key, double fallback) const;

  // True when the member exists and is not null.
  bool Has(std::string_view key) const;
  // The object itself, for code that passes it on unread (e.g. into an API reply).
  const nlohmann::json& raw() const { return *object_; }
  const std::string& source() const { return source_; }

  // An error of this reader's code about member `key`: "<source>: member "<key>" <what>".
  Status Error(std::string_view key, const std::string& what) const;

 private:
  JsonFields(const nlohmann::json* object, std::string source, Status::Code code)
      : object_(object), source_(std::move(source)), code_(code) {}

  // The member, or nullptr when absent (or null and `null_is_absent`).
  const nlohmann::json* Find(std::string_view key, bool null_is_absent) const;
  Result<const nlohmann::json*> Required(std::string_view key) const;
  Status WrongType(std::string_view key, const char* wanted, const nlohmann::json& got) const;

  const nlohmann::json* object_;
  std::string source_;
  Status::Code code_;
};

}  // namespace ferry
