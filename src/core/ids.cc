#include "core/ids.h"

#include <sys/random.h>

#include <cstdint>
#include <cstdio>

namespace ferry {
namespace {
void RandomBytes(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::getrandom(out + done, n - done, 0);
    if (got > 0) done += static_cast<size_t>(got);
  }
}
}  // namespace

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RandomBytes(reinterpret_cast<uint8_t*>(raw.data()), bytes);
  return HexOf(raw);
}

std::string NewId() { return RandomHex(8); }

std::string NewMac() {
  uint8_t bytes[3];
  RandomBytes(bytes, sizeof bytes);
  char out[18];
  std::snprintf(out, sizeof out, "52:54:00:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2]);
  return out;
}

Status ValidateName(const std::string& kind, const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(kind + " name '" + name + "' " + why +
                                   "; use 1-63 characters of a-z, 0-9, '-', '_' or '.', "
                                   "starting with a letter or digit");
  };
  if (name.empty() || name.size() > 63) return bad("has the wrong length");
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return bad("does not start with a letter or digit");
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return bad("has a character not allowed");
  }
  return Status::Ok();
}

}  // namespace ferry
