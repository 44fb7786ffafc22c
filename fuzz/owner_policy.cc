// Fuzzes the owner policy reader (crypto/owner_policy.h ParsePolicy): a document arrives from a
// file or, inside a migration's prepare message, from a peer. Each input is read as is, and
// again re-signed with the fuzzer's own owner key, so that the rules behind the signature check
// are reached too; rules that read back must give the signed body again.
#include "crypto/owner_policy.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "crypto/owner_key.h"

namespace {

using nlohmann::json;
using namespace ferry::crypto;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "owner_policy: %s\n", what);
  std::abort();
}

// One key for the whole run, made in a temporary directory that is removed at once.
const OwnerKey& FuzzKey() {
  static const std::optional<OwnerKey> key = [] {
    char dir[] = "/tmp/ferry-fuzz-policy-XXXXXX";
    if (::mkdtemp(dir) == nullptr) Fail("cannot make a temporary directory");
    const std::string path = std::string(dir) + "/owner.key";
    if (!OwnerKey::Generate(path).ok()) Fail("cannot generate an owner key");
    auto loaded = OwnerKey::Load(path);
    ::unlink(path.c_str());
    ::unlink((path + ".pub").c_str());
    ::rmdir(dir);
    if (!loaded.ok()) Fail("cannot load the owner key");
    return std::optional<OwnerKey>(std::move(loaded).value());
  }();
  return *key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)ParsePolicy(text, "fuzz");

  // The same body, signed by us.
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("policy")) return 0;
  const json& body = doc["policy"];
  auto signature = FuzzKey().Sign(PolicySigningInput(body));
  if (!signature.ok()) Fail("cannot sign");
  doc["owner_key"] = Base64Encode(FuzzKey().public_key());
  doc["signature"] = Base64Encode(*signature);
  auto policy = ParsePolicy(doc.dump(), "fuzz, re-signed");
  if (!policy.ok()) return 0;
  auto again = PolicyBodyJson(*policy);
  if (!again.ok() || *again != body) Fail("accepted rules do not give the signed body back");
  return 0;
}
