// A GUID as QEMU's vmgenid device takes it: 8-4-4-4-12 hex digits. It exists only through Parse
// or Random, so it prints as exactly that (lower case) and nothing a peer appended to it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry {

class Guid {
 public:
  // "6f1a7c1e-1111-2222-3333-444455556666", either case. `what` names the field in the error.
  static Result<Guid> Parse(std::string_view text, const std::string& what = "GUID");
  // A random (version 4) GUID.
  static Guid Random();

  std::string ToString() const;
  bool operator==(const Guid&) const = default;

 private:
  explicit Guid(std::array<uint8_t, 16> bytes) : bytes_(bytes) {}
  std::array<uint8_t, 16> bytes_;
};

}  // namespace ferry
