#include "harness/fleet.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "harness/test_files.h"

#ifndef FERRY_BUILD_DIR
#error "FERRY_BUILD_DIR must point at the build tree"
#endif

namespace ferry::testing {

CommandResult FerryLocal(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {std::string(FERRY_BUILD_DIR) + "/ferry"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

void FerryLocalMustSucceed(const std::vector<std::string>& args) {
  CommandResult r = FerryLocal(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

Fleet::Fleet() : dir_(MakeTempDir("/tmp", "ferry-fleet-")) {
  EXPECT_FALSE(dir_.empty()) << "cannot make a fleet directory in /tmp";
}

Fleet::~Fleet() {
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

void Fleet::AddHost(const std::string& host_id, const std::vector<std::string>& labels) {
  if (!ca_made_) {
    FerryLocalMustSucceed({"ca", "init", "--dir", CaDir()});
    ca_made_ = true;
  }
  std::vector<std::string> args = {"host", "enroll", "--ca", CaDir(), "--host-id", host_id};
  for (const auto& label : labels) args.insert(args.end(), {"--label", label});
  args.insert(args.end(), {"--out", TlsDir(host_id)});
  FerryLocalMustSucceed(args);
}

void Fleet::AddOwner(const std::string& key) {
  FerryLocalMustSucceed({"owner", "keygen", "--out", OwnerKey(key)});
}

std::string Fleet::SignPolicy(const std::string& key, const std::string& vm,
                              const std::vector<std::string>& rules) {
  const std::string out = Path(vm + "-" + std::to_string(++policies_) + ".policy");
  std::vector<std::string> args = {"policy", "sign", "--key", OwnerKey(key),
                                   "--vm",   vm,     "--out", out};
  args.insert(args.end(), rules.begin(), rules.end());
  FerryLocalMustSucceed(args);
  return out;
}

}  // namespace ferry::testing
