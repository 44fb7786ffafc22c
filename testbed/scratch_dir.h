// Temporary directories of a benchmark or an integration test. Everything a run creates lives in
// one, so one RemoveAll cleans it up, whatever failed on the way.
#pragma once

#include <string>

#include "core/status.h"

namespace ferry::testbed {

// A fresh directory PARENT/PREFIX-XXXXXX, removed with its contents when this object goes.
// Keep PARENT/PREFIX short: UNIX socket paths below it must stay under 108 bytes.
class ScratchDir {
 public:
  static Result<ScratchDir> Create(const std::string& parent, const std::string& prefix);

  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&& other) noexcept;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();

  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// A new directory PARENT/PREFIXXXXXXX (mkdtemp, mode 0700) that the caller removes; "" if it
// cannot be made. ScratchDir is this with a "-" before the X's and removal when it goes.
std::string MakeTempDir(const std::string& parent, const std::string& prefix);

}  // namespace ferry::testbed
