// Guest images: a directory holding image.json, a kernel and an initramfs, built by images/.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ferry::vm {

struct GuestService {
  std::string name;
  uint16_t guest_port = 0;
};

struct Image {
  static constexpr int kFormatMajor = 1;

  std::string name;
  std::string dir;
  std::string kernel;  // absolute paths
  std::string initrd;
  std::string kernel_cmdline;
  std::string ready_marker;  // the line the guest prints on its serial console once ready
  std::vector<GuestService> services;

  nlohmann::json ToJson() const;
};

// Finds images by name in an ordered list of directories (first match wins).
class ImageCatalog {
 public:
  explicit ImageCatalog(std::vector<std::string> search_dirs) : dirs_(std::move(search_dirs)) {}
  // Loads DIR/NAME/image.json, checks its format and version and that its files exist.
  Result<Image> Find(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::vector<std::string> dirs_;
};

// Parses one image.json (exposed for tests).
Result<Image> ParseImageManifest(const std::string& dir, const std::string& text);

}  // namespace ferry::vm
