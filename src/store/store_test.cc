#include "store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/files.h"
#include "store/byte_codec.h"
#include "store/crc32c.h"
#include "store/pack_file.h"
#include "store/store_test_fixture.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

TEST_F(StoreTest, SealThenReconstituteIsByteIdenticalAndSparse) {
  auto store = OpenStore();
  const std::string ram = MixedRam();
  HoldStats stats = Seal(*store, HeaderForTest("h-1"), ram);
  EXPECT_EQ(stats.logical_bytes, ram.size() + 12);
  EXPECT_EQ(stats.zero_chunks, 32u);
  EXPECT_EQ(stats.chunks, 16u + 16u + 1u + 1u);
  // The text chunks are equal: one of them is stored for all 16.
  EXPECT_EQ(stats.new_chunks, 16u + 1u + 1u + 1u);

  struct stat st;
  auto back = Reconstitute(*store, "h-1", "ram", &st);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == ram);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, ram.size() - (1 << 20))
      << "the zero stretch must be a hole";
  auto dev = Reconstitute(*store, "h-1", "device-state");
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(*dev, "device state");

  auto manifest = store->LoadHold("h-1");
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  EXPECT_EQ(manifest->header, HeaderForTest("h-1"));
  EXPECT_EQ(manifest->signer_host_id, "h1");
  ASSERT_EQ(manifest->blobs.size(), 2u);
  EXPECT_EQ(manifest->blobs[0], (BlobInfo{"ram", ram.size(), 65, 32}));
  EXPECT_EQ(store->ReconstituteBlob("h-1", "disk", 0).code(), Status::Code::kNotFound);
}

TEST_F(StoreTest, ASecondHoldOfTheSameOwnerStoresOnlyWhatChanged) {
  auto store = OpenStore();
  std::string ram = RandomBytesForTest(2 << 20, 7);
  HoldStats first = Seal(*store, HeaderForTest("first", kOwnerA), ram);
  EXPECT_EQ(first.new_chunks, 33u);
  ram[5 * kChunk + 17] ^= 0x55;  // the sibling wrote one page
  HoldStats second = Seal(*store, HeaderForTest("second", kOwnerA), ram);
  EXPECT_EQ(second.new_chunks, 1u);
  EXPECT_LT(second.stored_new_bytes, kChunk + 1024);
  auto back = Reconstitute(*store, "second", "ram");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == ram);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->holds, 2u);
  EXPECT_EQ(stats->chunks, 34u);
  EXPECT_GT(stats->dedup_ratio, 1.9);
}

TEST_F(StoreTest, EqualContentOfTwoOwnersSharesNothing) {
  auto store = OpenStore();
  const std::string ram = RandomBytesForTest(1 << 20, 9);
  HoldStats a = Seal(*store, HeaderForTest("of-a", kOwnerA), ram);
  HoldStats b = Seal(*store, HeaderForTest("of-b", kOwnerB), ram);
  EXPECT_EQ(a.new_chunks, b.new_chunks);
  auto ids_a = store->HoldChunkIds("of-a");
  auto ids_b = store->HoldChunkIds("of-b");
  ASSERT_TRUE(ids_a.ok() && ids_b.ok());
  for (const ChunkId& id : *ids_a) {
    EXPECT_EQ(std::find(ids_b->begin(), ids_b->end(), id), ids_b->end());
  }
}

TEST_F(StoreTest, ZeroChunksAreNeverStored) {
  auto store = OpenStore();
  HoldStats stats = Seal(*store, HeaderForTest("zeros"), std::string(1 << 20, '\0'), "x");
  EXPECT_EQ(stats.zero_chunks, 16u);
  EXPECT_EQ(stats.new_chunks, 1u) << "only the device state";
  struct stat st;
  auto back = Reconstitute(*store, "zeros", "ram", &st);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, std::string(1 << 20, '\0'));
  EXPECT_EQ(st.st_blocks, 0);
}

TEST_F(StoreTest, AFlippedByteInAChunkIsNamedOnReconstituteAndByVerify) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 20, 3));
  const ChunkPlace place = FirstChunkPlace(*store, "h-1");
  std::string bytes = *ReadFile(place.pack);
  Overwrite(place.pack, place.offset + place.bytes / 2,
            std::string(1, bytes[place.offset + place.bytes / 2] ^ 1));
  Status st = Reconstitute(*store, "h-1", "ram").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("hold h-1: chunk 0 of blob ram (offset 0) is damaged"));
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch"));
  EXPECT_THAT(st.message(), HasSubstr("the hold is damaged"));
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  EXPECT_EQ(report->chunks_checked, 17u);
  EXPECT_EQ(report->holds_checked, 1u);
  ASSERT_EQ(report->problems.size(), 2u);
  EXPECT_THAT(report->problems[0], HasSubstr("pack " + place.pack + " at offset"));
  EXPECT_THAT(report->problems[0], HasSubstr("checksum mismatch"));
  EXPECT_THAT(report->problems[1], HasSubstr("hold h-1: chunk 0 of blob ram (offset 0)"));
}

TEST_F(StoreTest, AChunkFlippedWithItsChecksumFixedIsCaughtByTheTag) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 20, 3));
  const ChunkPlace place = FirstChunkPlace(*store, "h-1");
  std::string chunk = ReadFile(place.pack)->substr(place.offset, place.bytes);
  chunk[100] ^= 1;
  std::string body = chunk.substr(0, chunk.size() - 4);
  PutU32(body, Crc32c(body));
  Overwrite(place.pack, place.offset, body);
  Status st = Reconstitute(*store, "h-1", "ram").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("authentication failed"));
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u) << "the chunk checks, the AEAD does not";
  EXPECT_THAT(report->problems[0], HasSubstr("chunk 0 of blob ram (offset 0) is damaged"));
}

TEST_F(StoreTest, AFlippedByteInARecordHeaderIsDamageNotAnotherChunk) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 20, 3));
  const ChunkPlace place = FirstChunkPlace(*store, "h-1");
  const size_t id_byte = place.offset - kPackRecordHeaderBytes + 5;
  Overwrite(place.pack, id_byte, std::string(1, (*ReadFile(place.pack))[id_byte] ^ 0x10));
  Status st = Reconstitute(*store, "h-1", "ram").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("chunk 0 of blob ram (offset 0) is damaged"));
  EXPECT_THAT(st.message(), HasSubstr("names another chunk"));
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_FALSE(report->ok());
  EXPECT_THAT(report->problems.back(), HasSubstr("hold h-1: chunk 0 of blob ram (offset 0)"));
}

TEST_F(StoreTest, AMissingPackIsNamedAsMissingChunksOfTheHold) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 20, 3));
  const ChunkPlace place = FirstChunkPlace(*store, "h-1");
  store.reset();
  ASSERT_EQ(::unlink(place.pack.c_str()), 0);
  store = OpenStore();
  Status st = Reconstitute(*store, "h-1", "ram").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("hold h-1: chunk 0 of blob ram (offset 0) is missing"));
  EXPECT_THAT(st.message(), HasSubstr("the hold is damaged"));
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 17u) << "16 RAM chunks and the device state";
  EXPECT_THAT(report->problems[0], HasSubstr("is missing"));
  auto collected = store->Collect();
  ASSERT_TRUE(collected.ok());
  EXPECT_TRUE(store->LoadHold("h-1").ok()) << "a damaged hold stays until it is deleted";
}

TEST_F(StoreTest, ATornPackTailLosesOnlyTheChunksAfterTheTear) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 20, 3));
  const std::string pack = PackFiles().at(0);
  store.reset();
  // Cut in the middle of the records: the index and the last records are gone.
  const std::string bytes = *ReadFile(pack);
  ASSERT_EQ(::truncate(pack.c_str(), static_cast<off_t>(bytes.size() / 2)), 0);
  store = OpenStore();
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  ASSERT_FALSE(report->ok());
  EXPECT_THAT(report->problems[0], HasSubstr("pack " + pack + ": no index at its end"));
  EXPECT_THAT(report->problems[0], HasSubstr("chunks recovered by reading its records"));
  EXPECT_GE(report->chunks_checked, 7u) << "the records before the tear are kept";
  EXPECT_LE(report->chunks_checked, 9u);
  EXPECT_THAT(report->problems.back(), HasSubstr("is missing"));
  Status st = Reconstitute(*store, "h-1", "ram").status();
  EXPECT_THAT(st.message(), HasSubstr("is missing"));
}

TEST_F(StoreTest, AnEditedManifestIsRefusedByChecksumAndThenBySignature) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 18, 3));
  const std::string path = Dir() + "/holds/h-1.hold";
  const std::string original = *ReadFile(path);
  std::string edited = original;
  const size_t at = edited.find("durable");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, 7, "expired");
  ASSERT_TRUE(WriteFileAtomic(path, edited, 0600).ok());
  Status st = store->LoadHold("h-1").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr(path + ": checksum mismatch; the hold is damaged"));

  std::string body = edited.substr(0, edited.size() - 32);
  unsigned char md[32];
  EVP_Digest(body.data(), body.size(), md, nullptr, EVP_sha256(), nullptr);
  ASSERT_TRUE(
      WriteFileAtomic(path, body + std::string(reinterpret_cast<char*>(md), 32), 0600).ok());
  st = store->LoadHold("h-1").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("signature does not verify"));
  EXPECT_EQ(store->ReconstituteBlob("h-1", "ram", 0).code(), Status::Code::kCorruption);
  EXPECT_EQ(store->UpdateState("h-1", "restoring").code(), Status::Code::kCorruption)
      << "a forged manifest is never re-signed";
}

TEST_F(StoreTest, AManifestSignedByAnotherHostIsRefused) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 18, 3));
  store.reset();
  // Same directory and keys, opened as h2: h1's signature does not verify against h2's cert.
  auto as_h2 = env_.Open(Dir(), env_.h2(), kChunk);
  ASSERT_TRUE(as_h2);
  Status st = as_h2->LoadHold("h-1").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("signed by another host"));
  auto report = as_h2->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
}

TEST_F(StoreTest, ShredThenCollectFreesWhatOnlyThatHoldUsed) {
  auto store = OpenStore();
  const std::string shared = RandomBytesForTest(1 << 20, 11);
  Seal(*store, HeaderForTest("keep", kOwnerA), shared + RandomBytesForTest(kChunk, 12), "a");
  Seal(*store, HeaderForTest("drop", kOwnerA), shared + RandomBytesForTest(2 * kChunk, 13), "b");
  ASSERT_TRUE(store->ShredHold("drop").ok());
  EXPECT_EQ(store->LoadHold("drop").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(store->ShredHold("drop").code(), Status::Code::kNotFound);
  auto collected = store->Collect();
  ASSERT_TRUE(collected.ok()) << collected.status().message();
  EXPECT_EQ(collected->chunks_removed, 3u) << "two random chunks and device state \"b\"";
  EXPECT_GT(collected->bytes_freed, 2u * kChunk);
  auto back = Reconstitute(*store, "keep", "ram");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == shared + RandomBytesForTest(kChunk, 12));
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems[0];
}

TEST_F(StoreTest, CollectSweepsNothingWhileAManifestIsUnreadable) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), RandomBytesForTest(1 << 18, 3));
  ASSERT_TRUE(WriteFileAtomic(Dir() + "/holds/h-1.hold", "garbage", 0600).ok());
  auto collected = store->Collect();
  EXPECT_EQ(collected.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(collected.status().message(), HasSubstr("hold h-1 cannot be read"));
  EXPECT_EQ(store->Stats()->chunks, 5u);
}

TEST_F(StoreTest, AFullDiskDuringSealFailsNamingTheHoldAndLeavesNoManifest) {
  const std::string mnt = env_.path("small");
  ASSERT_TRUE(MakeDirs(mnt, 0700).ok());
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs (needs root): " << std::strerror(errno);
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto store = env_.Open(mnt + "/store", env_.h1(), kChunk);
  ASSERT_TRUE(store);
  const std::string ram = RandomBytesForTest(8 << 20, 5);
  UniqueFd fd = env_.Blob("big.ram", ram);
  auto stats = store->SealHold(HeaderForTest("big"), {{"ram", fd.get(), ram.size()}});
  EXPECT_EQ(stats.status().code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(stats.status().message(), HasSubstr("hold big was not made"));
  EXPECT_THAT(stats.status().message(), HasSubstr("is full"));
  EXPECT_TRUE(store->ListHolds().empty());
  EXPECT_EQ(store->LoadHold("big").status().code(), Status::Code::kNotFound);
  auto collected = store->Collect();
  ASSERT_TRUE(collected.ok()) << collected.status().message();
  EXPECT_GT(collected->bytes_freed, 1u << 20) << "what the failed seal wrote goes back";
  const std::string small = RandomBytesForTest(256 << 10, 6);
  UniqueFd small_fd = env_.Blob("small.ram", small);
  EXPECT_TRUE(store->SealHold(HeaderForTest("fits"), {{"ram", small_fd.get(), small.size()}}).ok());
}

TEST_F(StoreTest, SealsAndCollectsAtOnceLoseNothing) {
  auto store = OpenStore();
  const std::string shared = RandomBytesForTest(1 << 20, 51);
  std::vector<std::string> rams;
  for (int i = 0; i < 4; ++i) rams.push_back(shared + RandomBytesForTest(kChunk, 60 + i));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      UniqueFd fd = env_.Blob("c" + std::to_string(i), rams[i]);
      auto stats = store->SealHold(HeaderForTest("c-" + std::to_string(i), kOwnerA),
                                   {{"ram", fd.get(), rams[i].size()}});
      EXPECT_TRUE(stats.ok()) << stats.status().message();
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(store->Collect().ok());
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(store->Stats()->chunks, 16u + 4u);
  for (int i = 0; i < 4; ++i) {
    auto back = Reconstitute(*store, "c-" + std::to_string(i), "ram");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_TRUE(*back == rams[i]);
  }
}

TEST_F(StoreTest, AReopenedStoreKeepsItsKeysAndHolds) {
  const std::string ram = RandomBytesForTest(1 << 20, 21);
  {
    auto store = OpenStore();
    Seal(*store, HeaderForTest("h-1", kOwnerA), ram);
  }
  struct stat st;
  ASSERT_EQ(::stat((Dir() + "/keys/host.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto store = OpenStore();
  EXPECT_EQ(store->ListHolds(), std::vector<std::string>{"h-1"});
  auto back = Reconstitute(*store, "h-1", "ram");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(*back == ram);
  HoldStats again = Seal(*store, HeaderForTest("h-2", kOwnerA), ram);
  EXPECT_EQ(again.new_chunks, 0u) << "the owner's secret persisted, so the chunks dedup";
}

TEST_F(StoreTest, OneProcessAtATimeAndOnlyAPrivateDirectory) {
  auto store = OpenStore();
  StoreOptions options;
  options.dir = Dir();
  auto second = Store::Open(options, *env_.h1().signer, env_.h1().cert.get());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));

  const std::string wide = env_.path("wide");
  ASSERT_EQ(::mkdir(wide.c_str(), 0755), 0);
  options.dir = wide;
  auto refused = Store::Open(options, *env_.h1().signer, env_.h1().cert.get());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("mode 0755"));
}

TEST_F(StoreTest, UpdateStateResignsAndKeepsTheContents) {
  auto store = OpenStore();
  const std::string ram = RandomBytesForTest(1 << 19, 4);
  Seal(*store, HeaderForTest("h-1"), ram);
  ASSERT_TRUE(store->UpdateState("h-1", "restoring").ok());
  auto manifest = store->LoadHold("h-1");
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->header.state, "restoring");
  EXPECT_TRUE(*Reconstitute(*store, "h-1", "ram") == ram);
  EXPECT_EQ(store->UpdateState("h-1", "Bad State").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store->UpdateState("nope", "durable").code(), Status::Code::kNotFound);
}

TEST_F(StoreTest, HoldIdsAreNeverReused) {
  auto store = OpenStore();
  Seal(*store, HeaderForTest("h-1"), "abc");
  UniqueFd fd = env_.Blob("again", "def");
  auto again = store->SealHold(HeaderForTest("h-1"), {{"ram", fd.get(), 3}});
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  auto bad = store->SealHold(HeaderForTest("../x"), {{"ram", fd.get(), 3}});
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::store
