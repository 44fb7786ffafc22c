// Fuzzes the hold manifest reader (store/hold_manifest.h DecodeHoldManifest, what LoadHold and a
// receiving BeginImport run on a manifest from disk or from a peer) and the chunk table decoder
// behind its seal (store/chunk_table.h DecodeChunkTable: a peer holding a hold's data key can
// make the table say anything). Each input is read as is, and again with its signed part
// re-signed by the target's own host key and the checksum fixed up, so the header checks behind
// the signature are reached too; a manifest that is accepted must encode to one that is accepted.
#include "store/hold_manifest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/files.h"
#include "crypto/fleet_ca.h"
#include "crypto/host_signer.h"
#include "store/byte_codec.h"
#include "store/chunk_table.h"

namespace {

using namespace ferry;

struct Host {
  std::unique_ptr<crypto::KeyHostSigner> signer;
  crypto::X509Ptr cert;
};

// One host identity for the whole run, made in a temporary directory at start-up.
const Host& TheHost() {
  static Host* host = [] {
    char dir[] = "/tmp/ferry-fuzz-hold-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    const std::string d = dir;
    if (!crypto::InitFleetCa(d + "/ca").ok() ||
        !crypto::EnrollHost(d + "/ca", {"fuzz", {}}, d + "/tls").ok()) {
      std::abort();
    }
    auto* h = new Host;
    h->signer = std::move(crypto::KeyHostSigner::Load(d + "/tls/host.key")).value();
    h->cert = std::move(crypto::ReadCertificatePem(d + "/tls/host.crt")).value();
    (void)RemoveAll(d);
    return h;
  }();
  return *host;
}

// The input with its signed part (as its own length fields delimit it) signed anew by TheHost
// and the checksum recomputed; "" when the input is too short to delimit anything.
std::string Resigned(std::string_view in) {
  if (in.size() < 24) return "";
  store::ByteReader r(in.substr(12));
  const uint64_t header = r.U32(), table = r.U64();
  const uint64_t end = std::min<uint64_t>(in.size(), 24 + header + table);
  std::string out(in.substr(0, end));
  auto sig = TheHost().signer->Sign("ferry-hold-manifest-v1\n" + out);
  if (!sig.ok()) std::abort();
  store::PutBytes(out, *sig);
  unsigned char md[32];
  EVP_Digest(out.data(), out.size(), md, nullptr, EVP_sha256(), nullptr);
  return out + std::string(reinterpret_cast<char*>(md), 32);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  X509* cert = TheHost().cert.get();
  (void)store::DecodeHoldManifest(in, cert, "fuzz.hold");
  (void)store::DecodeChunkTable(in, "fuzz table");

  const std::string resigned = Resigned(in);
  auto file = store::DecodeHoldManifest(resigned, cert, "fuzz.hold");
  if (!file.ok()) return 0;
  auto again = store::EncodeHoldManifest(*file, *TheHost().signer);
  if (!again.ok() || !store::DecodeHoldManifest(*again, cert, "fuzz.hold").ok()) {
    std::fprintf(stderr, "hold_manifest: an accepted manifest does not read back\n");
    std::abort();
  }
  return 0;
}
