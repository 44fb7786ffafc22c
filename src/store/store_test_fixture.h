// The fixture of the Store tests (store_test.cc, store_import_test.cc): a store in a scratch
// directory, sealing and reconstituting through files, and a look at where a chunk lies in the
// packs so that a test can damage it.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/files.h"
#include "store/byte_codec.h"
#include "store/pack_file.h"
#include "store/store.h"
#include "store/store_test_env.h"

namespace ferry::store {

inline constexpr uint32_t kChunk = 64 << 10;
inline const std::string kOwnerA(64, 'a');
inline const std::string kOwnerB(64, 'b');

// 4 MiB and a bit: random chunks, text chunks, and a long zero stretch in the middle.
inline std::string MixedRam() {
  std::string ram = RandomBytesForTest(1 << 20, 1);
  std::string line = "redis key value pairs and a kernel's text pages";
  line.resize(64, '.');  // a period that divides the chunk size: all 16 text chunks are equal
  std::string text;
  while (text.size() < (1 << 20)) text += line;
  ram += text;
  ram += std::string(2 << 20, '\0');
  ram += RandomBytesForTest(1000, 2);  // a short last chunk
  return ram;
}

class StoreTest : public ::testing::Test {
 protected:
  std::string Dir() const { return env_.path("store"); }
  std::unique_ptr<Store> OpenStore() { return env_.Open(Dir(), env_.h1(), kChunk); }

  HoldStats Seal(Store& store, const HoldHeader& header, const std::string& ram,
                 const std::string& device = "device state") {
    UniqueFd r = env_.Blob(header.hold_id + ".ram", ram);
    UniqueFd d = env_.Blob(header.hold_id + ".dev", device);
    auto stats = store.SealHold(
        header, {{"ram", r.get(), ram.size()}, {"device-state", d.get(), device.size()}});
    EXPECT_TRUE(stats.ok()) << stats.status().message();
    return stats.ok() ? *stats : HoldStats{};
  }

  Result<std::string> Reconstitute(Store& store, const std::string& hold, const std::string& blob,
                                   struct stat* st = nullptr) {
    const std::string out = env_.path("out-" + hold + "-" + blob);
    UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    FERRY_RETURN_IF_ERROR(store.ReconstituteBlob(hold, blob, fd.get()));
    if (st) ::fstat(fd.get(), st);
    return ReadFile(out);
  }

  // Where the first data chunk of hold `id` is: its pack and the offset of its sealed bytes.
  struct ChunkPlace {
    std::string pack;
    size_t offset = 0, bytes = 0;
  };
  ChunkPlace FirstChunkPlace(Store& store, const std::string& id) {
    auto ids = store.HoldChunkIds(id);
    EXPECT_TRUE(ids.ok() && !ids->empty());
    const std::string raw((*ids)[0].View());
    for (const std::string& pack : PackFiles()) {
      const std::string bytes = *ReadFile(pack);
      const size_t at = bytes.find(raw);  // its record's header comes before the index
      if (at == std::string::npos) continue;
      ByteReader r(std::string_view(bytes).substr(at + 32, 4));
      return {pack, at + kPackRecordHeaderBytes, r.U32()};
    }
    ADD_FAILURE() << "no pack holds the first chunk of " << id;
    return {};
  }
  std::vector<std::string> PackFiles() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(Dir() + "/packs")) {
      if (e.path().extension() == ".pack") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // In place, as a failing disk would (the store keeps its packs open).
  static void Overwrite(const std::string& file, size_t offset, std::string_view bytes) {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
  }

  StoreTestEnv env_;
};

}  // namespace ferry::store
