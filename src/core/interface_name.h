// A Linux network interface name (a bridge or a tap): 1 to 15 bytes (IFNAMSIZ - 1) of
// [A-Za-z0-9_.-], not starting with '-', not "." or "..". Narrower than what the kernel takes
// (it allows any byte but '/', ':' and whitespace) so that a name is safe as a QEMU option
// value, a path component and a word in a log line.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry {

class InterfaceName {
 public:
  static constexpr size_t kMaxLength = 15;

  // `what` names the field in the error ("network.bridge").
  static Result<InterfaceName> Parse(std::string_view text, const std::string& what = "interface");

  const std::string& str() const { return name_; }
  bool operator==(const InterfaceName&) const = default;

 private:
  explicit InterfaceName(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace ferry
