#include "vm/image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-image-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/default";
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/vmlinuz") << "kernel";
    std::ofstream(dir_ + "/initramfs.cpio.gz") << "initrd";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void WriteManifest(const std::string& text) { std::ofstream(dir_ + "/image.json") << text; }

  std::string root_, dir_;
};

constexpr const char* kGood = R"({"format": "ferry-image", "version": 1, "name": "default",
  "kernel": "vmlinuz", "initrd": "initramfs.cpio.gz", "cmdline": "console=ttyS0",
  "ready_marker": "ferry-guest: ready", "services": [{"name": "redis", "guest_port": 6379}]})";

TEST_F(ImageTest, FindsAnImageByName) {
  WriteManifest(kGood);
  ImageCatalog catalog({root_ + "/missing", root_});
  auto img = catalog.Find("default");
  ASSERT_TRUE(img.ok()) << img.status().message();
  EXPECT_EQ(img->kernel, dir_ + "/vmlinuz");
  EXPECT_EQ(img->initrd, dir_ + "/initramfs.cpio.gz");
  EXPECT_EQ(img->kernel_cmdline, "console=ttyS0");
  ASSERT_EQ(img->services.size(), 1u);
  EXPECT_EQ(img->services[0].guest_port, 6379);
  EXPECT_EQ(catalog.Names(), std::vector<std::string>{"default"});
}

TEST_F(ImageTest, UnknownImageListsTheKnownOnes) {
  WriteManifest(kGood);
  auto img = ImageCatalog({root_}).Find("redis-7");
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(img.status().message(), HasSubstr("image 'redis-7' is unknown; known images: default"));
}

TEST_F(ImageTest, WrongMagicMissingFilesAndNewerVersionsAreRefused) {
  auto refuse = [&](const std::string& manifest, const std::string& expected) {
    WriteManifest(manifest);
    auto img = ImageCatalog({root_}).Find("default");
    ASSERT_FALSE(img.ok()) << manifest;
    EXPECT_THAT(img.status().message(), HasSubstr(expected)) << manifest;
    EXPECT_THAT(img.status().message(), HasSubstr(dir_ + "/image.json"));
  };
  refuse("not json", "not a JSON object");
  refuse(R"({"format": "docker", "version": 1})", "wrong magic");
  refuse(R"({"format": "ferry-image", "version": 2, "name": "default"})", "newer than this ferryd");
  refuse(R"({"format": "ferry-image", "version": 1, "name": "default", "kernel": "nope",
            "initrd": "initramfs.cpio.gz", "cmdline": ""})",
         "is missing");
  refuse(R"({"format": "ferry-image", "version": 1, "name": "default"})", "missing \"kernel\"");
}

}  // namespace
}  // namespace ferry::vm
