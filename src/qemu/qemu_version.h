// Which QEMU ferryd drives, as `qemu-system-x86_64 --version` says. Read once at start-up: what
// ferryd gives a QEMU depends on it where QEMU releases differ (launch_spec.h, GuestRamKib).
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::qemu {

struct QemuVersion {
  int major = 0;  // 0: unknown (treated as the oldest QEMU ferry supports, 7.2)
  int minor = 0;
  int micro = 0;

  bool known() const { return major != 0; }
  bool AtLeast(int want_major, int want_minor) const {
    return major != want_major ? major > want_major : minor >= want_minor;
  }
  std::string ToString() const;  // "10.0.2", or "unknown"
  bool operator==(const QemuVersion&) const = default;
};

// The version in QEMU's `--version` text: its first line is "QEMU emulator version X.Y.Z" and
// maybe a distribution's suffix ("(Debian 1:7.2+dfsg-7+deb12u18)"). InvalidArgument for any other
// text, or numbers past 1000.
Result<QemuVersion> ParseQemuVersion(std::string_view text);

// The first line `binary --version` prints (its output goes to a file in `scratch_dir`, removed
// after); fails if it does not run and exit 0 within 10 s.
Result<std::string> QemuVersionLine(const std::string& binary, const std::string& scratch_dir);

// QemuVersionLine, parsed (ParseQemuVersion).
Result<QemuVersion> ProbeQemuVersion(const std::string& binary, const std::string& scratch_dir);

}  // namespace ferry::qemu
