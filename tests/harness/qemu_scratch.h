// Files a test hands to QEMU itself: a --qemu wrapper script and the files it reads or writes.
// QEMU (and so a wrapper ferryd starts in its place) runs as an unprivileged uid of its own,
// which cannot enter the test's 0700 state directory; these live in a directory it can.
#pragma once

#include <string>

namespace ferry::testing {

class QemuScratch {
 public:
  QemuScratch();  // a new directory under /tmp, mode 0755
  ~QemuScratch();  // removed with everything in it
  QemuScratch(const QemuScratch&) = delete;
  QemuScratch& operator=(const QemuScratch&) = delete;

  // A shell script (mode 0755) whose body is `script`; its path.
  std::string Script(const std::string& name, const std::string& script) const;
  // A file with `contents` that every QEMU uid may read and write (mode 0666); its path.
  std::string File(const std::string& name, const std::string& contents = "") const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace ferry::testing
