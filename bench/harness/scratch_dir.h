// Temporary directories and loopback ports for one benchmark run. Everything a benchmark creates
// lives in a ScratchDir, so one RemoveAll cleans it up, whatever failed on the way.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ferry::bench {

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

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for a bind to port 0).
// Another process may take it before the caller binds it; good enough for a benchmark.
Result<uint16_t> FreeLoopbackPort();

// SIGKILLs every process whose command line contains `path` or that holds a file under `path`
// open, and waits (up to 5 s each) for them to go. `path` must be a directory unique to this
// benchmark (a ScratchDir): this is the safety net for QEMUs that outlived their ferryd or the
// benchmark's own, whose command lines name their files by descriptor (/proc/self/fd/N).
// Returns how many it killed.
int KillProcessesUsing(const std::string& path);

}  // namespace ferry::bench
