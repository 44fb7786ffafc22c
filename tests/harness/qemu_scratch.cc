#include "harness/qemu_scratch.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace ferry::testing {

QemuScratch::QemuScratch() {
  char dir[] = "/tmp/ferry-qemu-scratch-XXXXXX";
  if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = dir;
  ::chmod(dir_.c_str(), 0755);
}

QemuScratch::~QemuScratch() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string QemuScratch::Script(const std::string& name, const std::string& script) const {
  const std::string path = dir_ + "/" + name;
  std::ofstream(path) << script;
  ::chmod(path.c_str(), 0755);
  return path;
}

std::string QemuScratch::File(const std::string& name, const std::string& contents) const {
  const std::string path = dir_ + "/" + name;
  std::ofstream(path) << contents;
  ::chmod(path.c_str(), 0666);
  return path;
}

}  // namespace ferry::testing
