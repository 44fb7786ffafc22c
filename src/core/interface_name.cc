#include "core/interface_name.h"

namespace ferry {

Result<InterfaceName> InterfaceName::Parse(std::string_view text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    std::string shown(text.substr(0, 32));
    for (char& c : shown) {
      if (c < ' ' || c > '~') c = '?';
    }
    return Status::InvalidArgument(what + " '" + shown + (text.size() > 32 ? "...'" : "'") +
                                   " is not an interface name (" + why +
                                   "); one is 1-15 characters of a-z, A-Z, "
                                   "0-9, '_', '.' or '-', not starting with '-'");
  };
  if (text.empty() || text.size() > kMaxLength) return bad("has the wrong length");
  if (text == "." || text == "..") return bad("is not a name");
  if (text[0] == '-') return bad("starts with '-'");
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return bad("has a character not allowed");
  }
  return InterfaceName(std::string(text));
}

}  // namespace ferry
