#include "store/store_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/files.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

const std::string kOwner(64, 'c');

class StoreKeysTest : public ::testing::Test {
 protected:
  std::unique_ptr<StoreKeys> Open() {
    auto keys = StoreKeys::Open(tmp_.path());
    EXPECT_TRUE(keys.ok()) << keys.status().message();
    return keys.ok() ? std::move(keys).value() : nullptr;
  }
  std::string HostKey() const { return tmp_ / "keys/host.key"; }
  crypto::TempDirForTest tmp_;
};

TEST_F(StoreKeysTest, TheHostKeyIsMadeOnceAndWrapsTheSameWayAfterAReopen) {
  auto keys = Open();
  auto wrapped = keys->WrapDataKey(std::string(32, 'd'), "h-1");
  ASSERT_TRUE(wrapped.ok());
  struct stat st;
  ASSERT_EQ(::stat(HostKey().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string file = *ReadFile(HostKey());
  keys = Open();
  EXPECT_EQ(*ReadFile(HostKey()), file) << "never replaced";
  auto unwrapped = keys->UnwrapDataKey(*wrapped, "h-1");
  ASSERT_TRUE(unwrapped.ok());
  EXPECT_EQ(*unwrapped, std::string(32, 'd'));
  EXPECT_EQ(keys->UnwrapDataKey(*wrapped, "h-2").status().code(), Status::Code::kCorruption)
      << "a wrapped key is bound to its hold";
}

TEST_F(StoreKeysTest, OwnerScopesPersistAndDifferPerOwner) {
  auto keys = Open();
  auto a = keys->Scope(kOwner);
  auto unowned = keys->Scope("");
  ASSERT_TRUE(a.ok() && unowned.ok());
  EXPECT_NE((*a)->secret(), (*unowned)->secret());
  EXPECT_TRUE(PathExists(tmp_ / ("keys/owners/" + kOwner + ".key")));
  EXPECT_TRUE(PathExists(tmp_ / "keys/owners/unowned.key"));
  const std::string secret = (*a)->secret();
  keys = Open();
  EXPECT_EQ((*keys->Scope(kOwner))->secret(), secret);
  EXPECT_EQ(keys->Scope("ABC").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(keys->Scope("../../etc").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(StoreKeysTest, APeersSecretIsAdoptedOnlyWhenTheOwnerHasNone) {
  auto keys = Open();
  EXPECT_FALSE(keys->ExportOwnerSecret(kOwner)->has_value());
  EXPECT_TRUE(*keys->AdoptOwnerSecret(kOwner, std::string(32, 's')));
  EXPECT_EQ(**keys->ExportOwnerSecret(kOwner), std::string(32, 's'));
  EXPECT_FALSE(*keys->AdoptOwnerSecret(kOwner, std::string(32, 't')));
  EXPECT_EQ((*keys->Scope(kOwner))->secret(), std::string(32, 's'));
  EXPECT_EQ(keys->AdoptOwnerSecret(kOwner, "short").status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(StoreKeysTest, DamagedKeyFilesAreRefusedNamingTheFile) {
  Open();
  const std::string good = *ReadFile(HostKey());
  auto write = [&](const std::string& bytes) {
    ASSERT_EQ(::unlink(HostKey().c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(HostKey(), bytes, 0600).ok());
  };
  std::string bad = good;
  bad[0] = 'X';
  write(bad);
  auto keys = StoreKeys::Open(tmp_.path());
  EXPECT_EQ(keys.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(keys.status().message(), HasSubstr(HostKey() + ": not a ferry store key file"));

  bad = good;
  bad[12] ^= 1;
  write(bad);
  keys = StoreKeys::Open(tmp_.path());
  EXPECT_THAT(keys.status().message(), HasSubstr("checksum mismatch"));

  write(EncodeKeyFile("FRHK", std::string(32, 'k')).replace(4, 1, "\x02"));
  keys = StoreKeys::Open(tmp_.path());
  EXPECT_EQ(keys.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(keys.status().message(), HasSubstr("newer"));

  write(good.substr(0, 20));
  EXPECT_EQ(StoreKeys::Open(tmp_.path()).status().code(), Status::Code::kCorruption);

  write(good);
  ASSERT_EQ(::chmod(HostKey().c_str(), 0644), 0);
  keys = StoreKeys::Open(tmp_.path());
  EXPECT_THAT(keys.status().message(), HasSubstr("lets other users read it"));
}

TEST_F(StoreKeysTest, AnOwnerFileUnderAnotherNameOrHostKeyDoesNotOpen) {
  auto keys = Open();
  ASSERT_TRUE(keys->Scope(kOwner).ok());
  const std::string other(64, 'd');
  ASSERT_EQ(::rename((tmp_ / ("keys/owners/" + kOwner + ".key")).c_str(),
                     (tmp_ / ("keys/owners/" + other + ".key")).c_str()),
            0);
  keys = Open();
  auto scope = keys->Scope(other);
  EXPECT_EQ(scope.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(scope.status().message(), HasSubstr("names another owner"));
}

}  // namespace
}  // namespace ferry::store
