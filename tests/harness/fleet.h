// A fleet for integration tests, made by the real CLI as an operator and owners would make it: a
// CA (`ferry ca init`), hosts enrolled with labels (`ferry host enroll`), owner keys (`ferry
// owner keygen`) and policies they sign (`ferry policy sign`). Everything lies in one directory
// of its own, /tmp/ferry-fleet-XXXXXX, which the destructor removes.
//
// Each step is a gtest failure when the CLI fails (a fatal one, as ASSERT_* in a helper is: the
// caller checks HasFatalFailure() if it must stop). Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "harness/command.h"

namespace ferry::testing {

// `ferry ARGS...` without a ferryd (CA, hosts, keys, policies), as a user runs it.
CommandResult FerryLocal(const std::vector<std::string>& args);
// The same, as a gtest failure (with what the CLI said) unless it succeeds.
void FerryLocalMustSucceed(const std::vector<std::string>& args);

class Fleet {
 public:
  Fleet();  // makes the directory
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Enrolls host `host_id` with `labels` ("zone=b", ...); its TLS directory (host.key, host.crt,
  // ca.crt) is TlsDir(host_id). The CA is made with the first host.
  void AddHost(const std::string& host_id, const std::vector<std::string>& labels = {});
  // Makes owner key `key` (OwnerKey(key), and OwnerKey(key) + ".pub").
  void AddOwner(const std::string& key);
  // A policy for `vm` signed with owner key `key` and `rules` (`--no-clone`, `--allow-label
  // zone=b`, ...); returns its file, a new one each call.
  std::string SignPolicy(const std::string& key, const std::string& vm,
                         const std::vector<std::string>& rules = {});

  const std::string& dir() const { return dir_; }
  // DIR/NAME: a place for a test's own files that go with the fleet.
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string CaDir() const { return Path("ca"); }
  std::string TlsDir(const std::string& host_id) const { return Path(host_id); }
  std::string OwnerKey(const std::string& key) const { return Path(key); }

 private:
  std::string dir_;
  bool ca_made_ = false;
  int policies_ = 0;
};

}  // namespace ferry::testing
