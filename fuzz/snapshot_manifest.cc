// Fuzzes the snapshot manifest reader (snapshot/snapshot_manifest.h ParseManifest, the checks
// of LoadManifest). Each input is read as is, and again with its manifest_sha256 made to match,
// so that the field checks behind the checksum are reached too; a manifest that is accepted
// must write out (ToJson) to one that is accepted again.
#include "snapshot/snapshot_manifest.h"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/ids.h"

namespace {

using ferry::snapshot::ParseManifest;
using nlohmann::json;

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return ferry::HexOf(std::string_view(reinterpret_cast<const char*>(md), len));
}

// `j` with "manifest_sha256" set to the digest WriteManifest would have written.
std::string WithChecksum(json j) {
  j.erase("manifest_sha256");
  j["manifest_sha256"] = Sha256Hex(j.dump());
  return j.dump(1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseManifest(text, "fuzz/manifest.json");

  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return 0;
  auto manifest = ParseManifest(WithChecksum(std::move(j)), "fuzz/manifest.json");
  if (!manifest.ok()) return 0;
  auto again = ParseManifest(WithChecksum(manifest->ToJson()), "fuzz/manifest.json");
  if (!again.ok()) {
    std::fprintf(stderr, "snapshot_manifest: an accepted manifest writes out unreadable: %s\n",
                 again.status().message().c_str());
    std::abort();
  }
  return 0;
}
