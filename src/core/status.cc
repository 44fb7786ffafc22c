#include "core/status.h"

#include <array>
#include <cstring>

namespace ferry {
namespace {
constexpr std::array<const char*, 12> kCodeNames = {
    "ok",          "invalid_argument", "not_found",   "already_exists",    "failed_precondition",
    "resource_exhausted", "corruption", "unavailable", "deadline_exceeded", "internal",
    "permission_denied", "cancelled"};
}  // namespace

const char* Status::CodeName() const { return kCodeNames[static_cast<size_t>(code_)]; }

Status::Code Status::CodeFromName(const std::string& name) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (name == kCodeNames[i]) return static_cast<Code>(i);
  }
  return Code::kInternal;
}

}  // namespace ferry
