// Fuzzes the parser of `qemu-system-x86_64 --version` (qemu/qemu_version.h), whose answer decides
// what ferryd gives QEMU (the guest's RAM size under TCG): any bytes give a known version or a
// clear refusal, never a version that says unknown, and the version printed back parses to itself.
#include "qemu/qemu_version.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "qemu_version: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto version = ferry::qemu::ParseQemuVersion(text);
  if (!version.ok()) {
    Require(!version.status().message().empty(), "a refusal says why");
    return 0;
  }
  Require(version->known(), "an accepted version is known");
  Require(version->major <= 1000 && version->minor <= 1000 && version->micro <= 1000,
          "every part is at most 1000");
  auto again = ferry::qemu::ParseQemuVersion("QEMU emulator version " + version->ToString());
  Require(again.ok() && *again == *version, "the printed version parses to itself");
  return 0;
}
