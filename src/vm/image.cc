#include "vm/image.h"

#include <filesystem>
#include <set>

#include "core/files.h"
#include "guest/protocol.h"

namespace ferry::vm {

using nlohmann::json;

json Image::ToJson() const {
  json services_json = json::array();
  for (const auto& s : services) services_json.push_back({{"name", s.name}, {"guest_port", s.guest_port}});
  return {{"name", name},     {"dir", dir},       {"kernel", kernel},
          {"initrd", initrd}, {"cmdline", kernel_cmdline}, {"services", services_json}};
}

Result<Image> ParseImageManifest(const std::string& dir, const std::string& text) {
  const std::string file = dir + "/image.json";
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& why) {
    return Status::Corruption("image manifest " + file + ": " + why + "; rebuild the image");
  };
  if (!j.is_object()) return bad("not a JSON object");
  if (j.value("format", "") != "ferry-image") return bad("wrong magic (format is not ferry-image)");
  if (!j.contains("version") || !j["version"].is_number_integer()) return bad("no version");
  if (j["version"].get<int>() > Image::kFormatMajor) {
    return Status::FailedPrecondition("image manifest " + file + ": version " +
                                      j["version"].dump() + " is newer than this ferryd reads (" +
                                      std::to_string(Image::kFormatMajor) + "); upgrade ferry");
  }
  for (const char* key : {"name", "kernel", "initrd", "cmdline"}) {
    if (!j.contains(key) || !j[key].is_string()) return bad(std::string("missing \"") + key + "\"");
  }
  Image img;
  img.name = j["name"];
  img.dir = dir;
  img.kernel = dir + "/" + j["kernel"].get<std::string>();
  img.initrd = dir + "/" + j["initrd"].get<std::string>();
  img.kernel_cmdline = j["cmdline"];
  img.ready_marker = j.value("ready_marker", std::string(guest::kReadyMarker));
  if (j.contains("services") && j["services"].is_array()) {
    for (const json& s : j["services"]) {
      if (!s.is_object() || !s.contains("name") || !s["name"].is_string() ||
          !s.contains("guest_port") || !s["guest_port"].is_number_unsigned()) {
        return bad("a service entry lacks name or guest_port");
      }
      img.services.push_back({s["name"], s["guest_port"].get<uint16_t>()});
    }
  }
  for (const std::string& f : {img.kernel, img.initrd}) {
    if (!PathExists(f)) return bad("file " + f + " is missing");
  }
  return img;
}

Result<Image> ImageCatalog::Find(const std::string& name) const {
  for (const auto& d : dirs_) {
    const std::string dir = d + "/" + name;
    if (!PathExists(dir + "/image.json")) continue;
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/image.json"));
    return ParseImageManifest(dir, text);
  }
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound("image '" + name + "' is unknown; known images: " +
                          (known.empty() ? "none (build them with scripts/setup.sh)" : known));
}

std::vector<std::string> ImageCatalog::Names() const {
  std::set<std::string> names;
  for (const auto& d : dirs_) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(d, ec)) {
      if (PathExists(entry.path().string() + "/image.json")) names.insert(entry.path().filename());
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace ferry::vm
