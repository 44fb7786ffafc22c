// A temporary directory for this library's tests, removed with everything in it.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "core/files.h"

namespace ferry::crypto {

class TempDirForTest {
 public:
  TempDirForTest() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-crypto-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << tmpl << " failed";
    path_ = tmpl;
  }
  ~TempDirForTest() { (void)RemoveAll(path_); }
  TempDirForTest(const TempDirForTest&) = delete;
  TempDirForTest& operator=(const TempDirForTest&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace ferry::crypto
