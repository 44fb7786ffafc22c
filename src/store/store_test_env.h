// What the store's unit tests share: a temporary directory, two enrolled hosts (h1, h2) with
// their signers and certificates, and blob files with chosen contents.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/files.h"
#include "core/unique_fd.h"
#include "crypto/fleet_ca.h"
#include "crypto/host_signer.h"
#include "crypto/openssl_util.h"
#include "crypto/temp_dir_for_test.h"
#include "store/store.h"

namespace ferry::store {

// Deterministic bytes that do not compress (xorshift), seeded per call.
inline std::string RandomBytesForTest(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 32);
  }
  return out;
}

struct TestHost {
  std::unique_ptr<crypto::KeyHostSigner> signer;
  crypto::X509Ptr cert;
};

class StoreTestEnv {
 public:
  StoreTestEnv() {
    EXPECT_TRUE(crypto::InitFleetCa(tmp_ / "ca").ok());
    for (const char* h : {"h1", "h2"}) {
      EXPECT_TRUE(crypto::EnrollHost(tmp_ / "ca", {h, {}}, tmp_ / (std::string("tls-") + h)).ok());
    }
    h1_ = Host("h1");
    h2_ = Host("h2");
  }

  const std::string& root() const { return tmp_.path(); }
  std::string path(const std::string& name) const { return tmp_ / name; }
  TestHost& h1() { return h1_; }
  TestHost& h2() { return h2_; }

  std::unique_ptr<Store> Open(const std::string& dir, TestHost& host, uint32_t chunk = 64 << 10) {
    StoreOptions options;
    options.dir = dir;
    options.chunk_bytes = chunk;
    auto s = Store::Open(options, *host.signer, host.cert.get());
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // A file `name` in the temp dir holding `contents`, open for reading.
  UniqueFd Blob(const std::string& name, const std::string& contents) {
    EXPECT_TRUE(WriteFileAtomic(tmp_ / name, contents, 0600).ok());
    UniqueFd fd(::open((tmp_ / name).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    return fd;
  }

 private:
  TestHost Host(const std::string& h) {
    TestHost host;
    auto signer = crypto::KeyHostSigner::Load(tmp_ / ("tls-" + h + "/host.key"));
    auto cert = crypto::ReadCertificatePem(tmp_ / ("tls-" + h + "/host.crt"));
    EXPECT_TRUE(signer.ok() && cert.ok());
    if (signer.ok()) host.signer = std::move(signer).value();
    if (cert.ok()) host.cert = std::move(cert).value();
    return host;
  }

  crypto::TempDirForTest tmp_;
  TestHost h1_, h2_;
};

// A hold manifest file a test edited, with its trailing SHA-256 made right again: so that what
// refuses the edit is the check the test is about, not the checksum.
inline std::string FixManifestChecksum(std::string file) {
  file.resize(file.size() - 32);
  unsigned char md[32];
  EVP_Digest(file.data(), file.size(), md, nullptr, EVP_sha256(), nullptr);
  return file + std::string(reinterpret_cast<char*>(md), 32);
}

inline HoldHeader HeaderForTest(const std::string& id, const std::string& owner = "") {
  HoldHeader h;
  h.hold_id = id;
  h.vm_name = "web-1";
  h.owner_fingerprint = owner;
  h.policy_text = owner.empty() ? "" : "{\"magic\":\"ferry-policy\"}";
  h.spec_json = "{\"name\":\"web-1\",\"memory_mib\":256}";
  h.created_at = 1765000000;
  h.state = "durable";
  return h;
}

}  // namespace ferry::store
