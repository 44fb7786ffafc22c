#include "snapshot/snapshot_manifest.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>

namespace ferry::snapshot {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void Spit(const std::string& path, const std::string& text) {
  ::unlink(path.c_str());  // the manifest is 0400; replace it rather than open it for writing
  std::ofstream(path, std::ios::binary) << text;
}

// The checksum as the format defines it, computed here independently of the code under test.
std::string Sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

class SnapshotManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* base : {"/dev/shm", "/tmp"}) {
      std::string tmpl = std::string(base) + "/ferry-manifest-XXXXXX";
      if (::mkdtemp(tmpl.data()) != nullptr) {
        dir_ = tmpl;
        break;
      }
    }
    ASSERT_FALSE(dir_.empty());
    manifest_path_ = dir_ + "/manifest.json";

    // A small but real snapshot: sparse RAM with some data, and a device state.
    const std::string src = dir_ + "/src";
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(8 * kMiB)), 0);
    std::mt19937_64 rng(7);
    std::string page(4096, '\0');
    for (auto& c : page) c = static_cast<char>(rng() | 1);
    ASSERT_EQ(::pwrite(fd, page.data(), page.size(), static_cast<off_t>(3 * kMiB)), 4096);
    ::close(fd);
    auto ram = CopyRamFile(src, dir_ + "/ram");
    ASSERT_TRUE(ram.ok()) << ram.status().message();
    ::unlink(src.c_str());

    std::string device(300 * 1024 + 17, '\0');
    for (auto& c : device) c = static_cast<char>(rng());
    Spit(dir_ + "/device.state", device);

    m_.name = "warm";
    m_.id = "0123456789abcdef";
    m_.vm_name = "web-1";
    m_.vm_id = "fedcba9876543210";
    m_.vm_spec = {{"name", "web-1"}, {"memory_mib", 8}, {"network", {{"mode", "user"}}}};
    m_.image = "default";
    m_.memory_mib = 8;
    m_.accelerator = "tcg";
    m_.machine = "q35/max";
    m_.created_at_ms = 1700000000123;
    m_.pause_ms = 42;
    m_.device_state.size_bytes = device.size();
    m_.device_state.sha256 = Sha256Hex(device);
    m_.ram = *ram;
    ASSERT_TRUE(WriteManifest(dir_, m_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  json Written() { return json::parse(Slurp(manifest_path_)); }
  // Writes `j` with a checksum that matches it, as a newer ferry or a careful forger would.
  void WriteSealed(json j) {
    j.erase("manifest_sha256");
    j["manifest_sha256"] = Sha256Hex(j.dump());
    Spit(manifest_path_, j.dump(2));
  }
  void ExpectRefused(Status::Code code, const std::string& why) {
    auto loaded = LoadManifest(dir_);
    ASSERT_FALSE(loaded.ok()) << "expected: " << why;
    EXPECT_EQ(loaded.status().code(), code) << loaded.status().message();
    EXPECT_THAT(loaded.status().message(), HasSubstr("snapshot manifest " + manifest_path_));
    EXPECT_THAT(loaded.status().message(), HasSubstr(why));
  }

  std::string dir_, manifest_path_;
  SnapshotManifest m_;
};

TEST_F(SnapshotManifestTest, SaysHowTheDeviceStateLeavesOutTheGuestRam) {
  // 1.1 manifests have no "guest_ram": QEMU skipped the RAM (x-ignore-shared on).
  json j = Written();
  j["device_state"].erase("guest_ram");
  WriteSealed(j);
  auto old = LoadManifest(dir_);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_FALSE(old->device_state.guest_ram_stripped);
  // A pre-copied snapshot's device state had it stripped by ferry: loaded with it off.
  j["device_state"]["guest_ram"] = "stripped";
  WriteSealed(j);
  auto precopied = LoadManifest(dir_);
  ASSERT_TRUE(precopied.ok()) << precopied.status().message();
  EXPECT_TRUE(precopied->device_state.guest_ram_stripped);
  j["device_state"]["guest_ram"] = "kept";
  WriteSealed(j);
  ExpectRefused(Status::Code::kCorruption, "device_state.guest_ram");
}

TEST_F(SnapshotManifestTest, RoundTripsAndIsReadOnly) {
  auto loaded = LoadManifest(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->name, "warm");
  EXPECT_EQ(loaded->id, m_.id);
  EXPECT_EQ(loaded->vm_name, "web-1");
  EXPECT_EQ(loaded->vm_id, m_.vm_id);
  EXPECT_EQ(loaded->vm_spec, m_.vm_spec);
  EXPECT_EQ(loaded->image, "default");
  EXPECT_EQ(loaded->memory_mib, 8u);
  EXPECT_EQ(loaded->accelerator, "tcg");
  EXPECT_EQ(loaded->machine, "q35/max");
  EXPECT_EQ(loaded->created_at_ms, m_.created_at_ms);
  EXPECT_EQ(loaded->pause_ms, 42);
  EXPECT_EQ(loaded->device_state, m_.device_state);
  EXPECT_EQ(loaded->ram_file, "ram");
  EXPECT_EQ(loaded->ram, m_.ram);
  EXPECT_EQ(loaded->version_major, 1);
  EXPECT_EQ(loaded->version_minor, 2);
  EXPECT_FALSE(loaded->disk) << "a VM without a disk has no disk entry";
  EXPECT_EQ(loaded->manifest_sha256, Written()["manifest_sha256"]);

  json j = Written();
  EXPECT_EQ(j["format"], "ferry-snapshot");
  EXPECT_EQ(j["device_state"]["guest_ram"], "skipped");
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", m_.ram.chunks[3].crc32);
  EXPECT_EQ(j["ram"]["chunks"],
            json({"zero", "zero", "zero", crc, "zero", "zero", "zero", "zero"}));
  struct stat st;
  ASSERT_EQ(::stat(manifest_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);

  VerifiedFiles verified;
  EXPECT_TRUE(VerifySnapshot(dir_, *loaded, verified).ok());
}

TEST_F(SnapshotManifestTest, AWrongMagicIsRefused) {
  json j = Written();
  j["format"] = "ferry-image";
  WriteSealed(j);
  ExpectRefused(Status::Code::kCorruption, "wrong magic");
}

TEST_F(SnapshotManifestTest, ANewerMajorIsRefusedANewerMinorIsRead) {
  json j = Written();
  j["version_major"] = 2;
  WriteSealed(j);
  ExpectRefused(Status::Code::kFailedPrecondition, "newer than this ferryd reads (1); upgrade");

  j = Written();  // not sealed again: a newer major is refused before its checksum is judged
  j["version_major"] = 2;
  j["manifest_sha256"] = "whatever a v2 uses";
  Spit(manifest_path_, j.dump());
  ExpectRefused(Status::Code::kFailedPrecondition, "upgrade ferry");

  WriteManifest(dir_, m_);  // 0400 file: WriteFileAtomic renames over it
  j = Written();
  j["version_major"] = 1;
  j["version_minor"] = 7;
  j["hugepages"] = {{"size", "2M"}};  // a field a newer minor added, covered by the checksum
  WriteSealed(j);
  auto loaded = LoadManifest(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->version_minor, 7);
  EXPECT_EQ(loaded->ram, m_.ram);

  j["hugepages"]["size"] = "1G";  // ...so editing it is damage
  Spit(manifest_path_, j.dump());
  ExpectRefused(Status::Code::kCorruption, "checksum mismatch; the snapshot is damaged");
}

TEST_F(SnapshotManifestTest, AnEditedFieldIsAChecksumMismatch) {
  std::string text = Slurp(manifest_path_);
  const std::string from = "\"pause_ms\": 42", to = "\"pause_ms\": 41";
  ASSERT_NE(text.find(from), std::string::npos) << text.substr(0, 400);
  text.replace(text.find(from), from.size(), to);
  Spit(manifest_path_, text);
  ExpectRefused(Status::Code::kCorruption,
                "snapshot manifest " + manifest_path_ +
                    ": checksum mismatch; the snapshot is damaged, take a new one");
}

TEST_F(SnapshotManifestTest, WhitespaceDoesNotMatter) {
  Spit(manifest_path_, Written().dump());  // compact instead of pretty
  EXPECT_TRUE(LoadManifest(dir_).ok());
}

TEST_F(SnapshotManifestTest, TruncatedJsonIsRefused) {
  std::string text = Slurp(manifest_path_);
  Spit(manifest_path_, text.substr(0, text.size() / 2));
  ExpectRefused(Status::Code::kCorruption, "not valid JSON");
}

TEST_F(SnapshotManifestTest, MissingOrBadFieldsAreRefusedEvenWhenSealed) {
  const json original = Written();
  auto refuse_without = [&](const std::function<void(json&)>& edit, const std::string& why) {
    json j = original;
    edit(j);
    WriteSealed(j);
    ExpectRefused(Status::Code::kCorruption, why);
  };
  refuse_without([](json& j) { j.erase("name"); }, "\"name\" is missing");
  refuse_without([](json& j) { j["source_vm"].erase("spec"); }, "\"source_vm.spec\" is missing");
  refuse_without([](json& j) { j["device_state"].erase("sha256"); }, "device_state.sha256");
  refuse_without([](json& j) { j["memory_mib"] = -1; }, "\"memory_mib\" is missing or not");
  refuse_without([](json& j) { j["ram"].erase("chunks"); }, "ram.chunks");
  refuse_without([](json& j) { j["device_state"]["file"] = "../../etc/shadow"; },
                 "is not a plain file name");

  json unsealed = original;
  unsealed.erase("manifest_sha256");
  Spit(manifest_path_, unsealed.dump());
  ExpectRefused(Status::Code::kCorruption, "\"manifest_sha256\" is missing");
}

TEST_F(SnapshotManifestTest, AMissingManifestNamesTheFile) {
  ::unlink(manifest_path_.c_str());
  auto loaded = LoadManifest(dir_);
  EXPECT_EQ(loaded.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(loaded.status().message(), HasSubstr(manifest_path_));
}

TEST(Sha256FileTest, MatchesAKnownVector) {
  char tmpl[] = "/tmp/ferry-sha-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_EQ(::write(fd, "abc", 3), 3);
  ::close(fd);
  auto sha = Sha256File(tmpl);
  ::unlink(tmpl);
  ASSERT_TRUE(sha.ok()) << sha.status().message();
  EXPECT_EQ(*sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256File("/nonexistent/x").status().code(), Status::Code::kNotFound);
}

TEST_F(SnapshotManifestTest, DeviceStateDamageIsFound) {
  const std::string path = dir_ + "/device.state";
  const std::string good = Slurp(path);
  ASSERT_TRUE(VerifyDeviceState(dir_, m_).ok());

  std::string flipped = good;
  flipped[123456] ^= 0x20;
  Spit(path, flipped);
  Status st = VerifyDeviceState(dir_, m_);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("snapshot device state " + path + ": checksum mismatch"));

  Spit(path, good.substr(0, 1000));
  st = VerifyDeviceState(dir_, m_);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr(path + ": truncated: 1000 bytes, expected 307217"));

  ::unlink(path.c_str());
  st = VerifyDeviceState(dir_, m_);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr(path));
  VerifiedFiles verified;
  EXPECT_EQ(VerifySnapshot(dir_, m_, verified).code(), Status::Code::kCorruption);
}

TEST_F(SnapshotManifestTest, VerifySnapshotFindsRamDamage) {
  auto loaded = LoadManifest(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(::chmod((dir_ + "/ram").c_str(), 0600), 0);  // to play the damaging writer
  int fd = ::open((dir_ + "/ram").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "\x01", 1, static_cast<off_t>(3 * kMiB + 9)), 1);
  ::close(fd);
  VerifiedFiles verified;
  Status st = VerifySnapshot(dir_, *loaded, verified);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(),
              HasSubstr(dir_ + "/ram: checksum mismatch at chunk 3 (offset 3145728)"));
}

TEST_F(SnapshotManifestTest, DiskEntryRoundTripsAndItsDamageIsFound) {
  const std::string disk = std::string(64 * 1024, 'q') + "end";
  Spit(dir_ + "/disk.qcow2", disk);
  DiskImageFile d;
  d.size_bytes = disk.size();
  d.sha256 = Sha256Hex(disk);
  d.chain = {"/state/disks/aaaa.qcow2"};
  m_.disk = d;
  ::unlink(manifest_path_.c_str());
  ASSERT_TRUE(WriteManifest(dir_, m_).ok());
  auto loaded = LoadManifest(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_TRUE(loaded->disk);
  EXPECT_EQ(*loaded->disk, d);
  VerifiedFiles verified;
  EXPECT_TRUE(VerifySnapshot(dir_, *loaded, verified).ok());

  std::string flipped = disk;
  flipped[4000] ^= 1;
  Spit(dir_ + "/disk.qcow2", flipped);
  Status st = VerifySnapshot(dir_, *loaded, verified);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(),
              HasSubstr("snapshot disk image " + dir_ + "/disk.qcow2: checksum mismatch"));

  json j = Written();
  j["disk"]["chain"] = json::array({"relative.qcow2"});
  WriteSealed(j);
  ExpectRefused(Status::Code::kCorruption, "disk.chain");
}

}  // namespace
}  // namespace ferry::snapshot
