#include "guest/ssh_host_key.h"

#include <gtest/gtest.h>

#include "guest/encoding.h"

namespace ferry::guest {
namespace {

// Keys made with ssh-keygen and dropbearkey; fingerprints as `ssh-keygen -lf` printed them.
constexpr const char* kOpenSshLine =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAZQFWkaKHuwR2z1gRMKgAqjfwhDS6qaAGM1pqyUkv8R test@ferry";
constexpr const char* kOpenSshFingerprint = "SHA256:DSwsOJOKKDjhJZiyunGCcdf2dylswC6VAets+pISDLE";
constexpr const char* kDropbearOutput =
    "Generating 256 bit ed25519 key, this may take a while...\n"
    "Public key portion is:\n"
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINoNCJUiaA6iyUaBcM7OG+7wZ8zIiJAns6KLvJk3oh6D root@vm\n"
    "Fingerprint: SHA256:CMfTW4xhg+QJe2ifVnnjTpGx/8+JJbybjzF/OlZ6bbs\n";
constexpr const char* kDropbearFingerprint = "SHA256:CMfTW4xhg+QJe2ifVnnjTpGx/8+JJbybjzF/OlZ6bbs";

TEST(SshHostKeyTest, FingerprintMatchesSshKeygen) {
  auto key = FindPublicKeyLine(kOpenSshLine);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type, "ssh-ed25519");
  EXPECT_EQ(key->blob.size(), 51u);  // string "ssh-ed25519" + string of 32 key bytes
  EXPECT_EQ(Sha256Fingerprint(key->blob), kOpenSshFingerprint);
}

TEST(SshHostKeyTest, FindsTheKeyInDropbearkeyOutput) {
  auto key = FindPublicKeyLine(kDropbearOutput);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type, "ssh-ed25519");
  EXPECT_EQ(Sha256Fingerprint(key->blob), kDropbearFingerprint);
  // CRLF line ends and a missing comment are tolerated.
  std::string line = std::string(kOpenSshLine);
  line = line.substr(0, line.rfind(' ')) + "\r\n";
  ASSERT_TRUE(FindPublicKeyLine(line));
  EXPECT_EQ(Sha256Fingerprint(FindPublicKeyLine(line)->blob), kOpenSshFingerprint);
}

TEST(SshHostKeyTest, RejectsLinesThatAreNotKeys) {
  EXPECT_FALSE(FindPublicKeyLine(""));
  EXPECT_FALSE(FindPublicKeyLine("Public key portion is:\nFingerprint: SHA256:abc\n"));
  EXPECT_FALSE(FindPublicKeyLine("ssh-ed25519 !!!notbase64 x"));
  // The blob must name the type the line claims.
  std::string blob =
      *Base64Decode("AAAAC3NzaC1lZDI1NTE5AAAAIAZQFWkaKHuwR2z1gRMKgAqjfwhDS6qaAGM1pqyUkv8R");
  EXPECT_FALSE(FindPublicKeyLine("ssh-rsa " + Base64Encode(blob)));
  EXPECT_FALSE(FindPublicKeyLine("ssh-ed25519 " + Base64Encode(blob.substr(0, 10))));
}

}  // namespace
}  // namespace ferry::guest
