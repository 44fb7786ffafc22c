// A store object of kind "snapshot" (`ferry snapshot send`) travels as a hold does, and what was
// altered on the way -- the manifest with its checksum fixed up, or a sealed chunk -- is refused
// by the receiving store before anything is committed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/files.h"
#include "store/hold_import.h"
#include "store/hold_manifest.h"
#include "store/store.h"
#include "store/store_test_env.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kChunk = 64 << 10;
const std::string kOwner(64, 'a');

class SnapshotObjectTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sender_ = env_.Open(env_.path("store-h1"), env_.h1(), kChunk);
    receiver_ = env_.Open(env_.path("store-h2"), env_.h2(), kChunk);
    HoldHeader header = HeaderForTest("snap-0123abcd", kOwner);
    header.kind = kKindSnapshot;
    header.spec_json = R"({"format":"ferry-snapshot","name":"warm"})";
    UniqueFd r = env_.Blob("ram", ram_);
    UniqueFd d = env_.Blob("dev", "device state");
    ASSERT_TRUE(
        sender_->SealHold(header, {{"ram", r.get(), ram_.size()}, {"device-state", d.get(), 12}})
            .ok());
    auto secret = sender_->ExportOwnerSecret(kOwner);
    ASSERT_TRUE(secret.ok() && secret->has_value());
    ASSERT_TRUE(receiver_->AdoptOwnerSecret(kOwner, **secret).ok());
    auto exported = sender_->ExportHold("snap-0123abcd");
    ASSERT_TRUE(exported.ok());
    exported_.manifest = exported->manifest;
    exported_.data_key = exported->data_key;
  }

  StoreTestEnv env_;
  const std::string ram_ = RandomBytesForTest(6 * kChunk, 77);
  std::unique_ptr<Store> sender_, receiver_;
  HoldExport exported_;
};

TEST_F(SnapshotObjectTransferTest, ItArrivesAsASnapshotObjectSignedByTheReceiver) {
  auto import = receiver_->BeginImport(exported_, env_.h1().cert.get());
  ASSERT_TRUE(import.ok()) << import.status().message();
  EXPECT_EQ((*import)->manifest().header.kind, kKindSnapshot);
  for (const ChunkId& c : (*import)->needed()) {
    ASSERT_TRUE((*import)->PutChunk(c, *sender_->ReadSealedChunk(c)).ok());
  }
  ASSERT_TRUE((*import)->Commit("durable").ok());
  import->reset();
  auto kept = receiver_->LoadHold("snap-0123abcd");
  ASSERT_TRUE(kept.ok()) << kept.status().message();
  EXPECT_EQ(kept->header.kind, kKindSnapshot);
  EXPECT_EQ(kept->signer_host_id, "h2");
  const std::string out = env_.path("ram-out");
  UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(receiver_->ReconstituteBlob("snap-0123abcd", "ram", fd.get()).ok());
  EXPECT_TRUE(*ReadFile(out) == ram_);
}

TEST_F(SnapshotObjectTransferTest, AnAlteredManifestOrChunkIsRefused) {
  // The kind turned into a hold's, the checksum fixed up: the signature no longer verifies.
  HoldExport edited{exported_.manifest, exported_.data_key};
  const size_t at = edited.manifest.find("\"kind\":\"snapshot\"");
  ASSERT_NE(at, std::string::npos);
  edited.manifest.replace(at, 17, "\"kind\":\"hold\"    ");
  Status st = receiver_
                  ->BeginImport(HoldExport{FixManifestChecksum(edited.manifest), edited.data_key},
                                env_.h1().cert.get())
                  .status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("signature does not verify"));

  auto import = receiver_->BeginImport(exported_, env_.h1().cert.get());
  ASSERT_TRUE(import.ok()) << import.status().message();
  const ChunkId first = (*import)->needed()[0];
  std::string sealed = *sender_->ReadSealedChunk(first);
  sealed[sealed.size() / 2] ^= 0x40;
  st = (*import)->PutChunk(first, sealed);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("snap-0123abcd"));
  EXPECT_EQ((*import)->Commit("durable").code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(receiver_->ListHolds().empty());
}

}  // namespace
}  // namespace ferry::store
