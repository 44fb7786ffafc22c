#include "core/json_fields.h"

#include <limits>

namespace ferry {

using nlohmann::json;

Result<JsonFields> JsonFields::Of(const json& value, std::string source, Status::Code code) {
  if (!value.is_object()) {
    return Status::FromCode(code, source + ": must be a JSON object, not " +
                                      std::string(value.is_null() ? "null" : value.type_name()));
  }
  return JsonFields(&value, std::move(source), code);
}

Status JsonFields::Error(std::string_view key, const std::string& what) const {
  return Status::FromCode(code_, source_ + ": member \"" + std::string(key) + "\" " + what);
}

Status JsonFields::WrongType(std::string_view key, const char* wanted, const json& got) const {
  return Error(key, std::string("must be ") + wanted + ", not " +
                        (got.is_number_float() ? "a fraction" : got.type_name()));
}

const json* JsonFields::Find(std::string_view key, bool null_is_absent) const {
  auto it = object_->find(key);
  if (it == object_->end()) return nullptr;
  if (null_is_absent && it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::Has(std::string_view key) const { return Find(key, true) != nullptr; }

Result<const json*> JsonFields::Required(std::string_view key) const {
  const json* member = Find(key, false);
  if (member == nullptr) return Error(key, "is missing");
  return member;
}

Result<std::string> JsonFields::String(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (!m->is_string()) return WrongType(key, "a string", *m);
  return m->get_ref<const std::string&>();
}

Result<bool> JsonFields::Bool(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (!m->is_boolean()) return WrongType(key, "a boolean", *m);
  return m->get<bool>();
}

Result<int64_t> JsonFields::Int(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (m->is_number_integer() && !m->is_number_unsigned()) return m->get<int64_t>();
  if (m->is_number_unsigned()) {
    uint64_t u = m->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error(key, "is too large: " + std::to_string(u));
    }
    return static_cast<int64_t>(u);
  }
  return WrongType(key, "an integer", *m);
}

Result<uint64_t> JsonFields::Uint(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (m->is_number_unsigned()) return m->get<uint64_t>();
  if (m->is_number_integer()) {
    int64_t i = m->get<int64_t>();
    if (i < 0) return Error(key, "must not be negative");
    return static_cast<uint64_t>(i);
  }
  return WrongType(key, "an unsigned integer", *m);
}

Result<double> JsonFields::Number(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (!m->is_number()) return WrongType(key, "a number", *m);
  return m->get<double>();
}

Result<JsonFields> JsonFields::Object(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (!m->is_object()) return WrongType(key, "an object", *m);
  return JsonFields(m, source_ + ", in \"" + std::string(key) + "\"", code_);
}

Result<const json*> JsonFields::Array(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Required(key));
  if (!m->is_array()) return WrongType(key, "an array", *m);
  return m;
}

Result<std::vector<std::string>> JsonFields::Strings(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Array(key));
  std::vector<std::string> out;
  out.reserve(m->size());
  for (size_t i = 0; i < m->size(); ++i) {
    const json& e = (*m)[i];
    if (!e.is_string()) {
      return Error(key, "must hold strings only; element " + std::to_string(i) + " is " +
                            std::string(e.type_name()));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::vector<JsonFields>> JsonFields::Objects(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(const json* m, Array(key));
  std::vector<JsonFields> out;
  out.reserve(m->size());
  for (size_t i = 0; i < m->size(); ++i) {
    const json& e = (*m)[i];
    if (!e.is_object()) {
      return Error(key, "must hold objects only; element " + std::to_string(i) + " is " +
                            std::string(e.type_name()));
    }
    out.push_back(JsonFields(
        &e, source_ + ", in \"" + std::string(key) + "\"[" + std::to_string(i) + "]", code_));
  }
  return out;
}

Result<std::string> JsonFields::String(std::string_view key, std::string fallback) const {
  if (!Has(key)) return fallback;
  return String(key);
}

Result<bool> JsonFields::Bool(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  return Bool(key);
}

Result<int64_t> JsonFields::Int(std::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return Int(key);
}

Result<double> JsonFields::Number(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return Number(key);
}

}  // namespace ferry
