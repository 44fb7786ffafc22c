#include "testbed/scratch_dir.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/files.h"

namespace ferry::testbed {

std::string MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  char* dir = ::mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string();
}

Result<ScratchDir> ScratchDir::Create(const std::string& parent, const std::string& prefix) {
  std::string dir = MakeTempDir(parent, prefix + "-");
  if (dir.empty()) {
    return Status::Internal("cannot create a temporary directory in " + parent + ": " +
                            std::strerror(errno));
  }
  return ScratchDir(std::move(dir));
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) RemoveAll(path_);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

ScratchDir::~ScratchDir() {
  if (!path_.empty()) RemoveAll(path_);
}

}  // namespace ferry::testbed
