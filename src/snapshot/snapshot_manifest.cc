#include "snapshot/snapshot_manifest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "core/files.h"
#include "core/ids.h"

namespace ferry::snapshot {

using nlohmann::json;

namespace {

constexpr const char* kChecksumKey = "manifest_sha256";
constexpr const char* kDamaged = "; the snapshot is damaged, take a new one";

std::string Hex(const unsigned char* bytes, size_t n) {
  return HexOf(std::string_view(reinterpret_cast<const char*>(bytes), n));
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

// The checksum covers whatever the file holds besides itself, so fields a newer minor version
// added are protected too, and a pretty-printed file checks the same as a compact one.
std::string CanonicalDigest(json j) {
  j.erase(kChecksumKey);
  return Sha256Hex(j.dump());
}

// File names come from the manifest; one that leaves the directory is damage, not a path to open.
bool IsPlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Reads typed fields out of the manifest; a missing or ill-typed field is Corruption naming it.
class FieldReader {
 public:
  explicit FieldReader(std::string file) : file_(std::move(file)) {}

  Status Missing(const std::string& key, const char* want) const {
    return Status::Corruption("snapshot manifest " + file_ + ": \"" + key +
                              "\" is missing or not " + want + kDamaged);
  }
  Result<std::string> String(const json& obj, const std::string& prefix, const char* key) const {
    if (!obj.contains(key) || !obj[key].is_string()) return Missing(prefix + key, "a string");
    return obj[key].get<std::string>();
  }
  Result<uint64_t> Unsigned(const json& obj, const std::string& prefix, const char* key) const {
    if (!obj.contains(key) || !obj[key].is_number_integer() || obj[key].get<int64_t>() < 0) {
      return Missing(prefix + key, "a whole number");
    }
    return obj[key].get<uint64_t>();
  }
  Result<int64_t> Integer(const json& obj, const std::string& prefix, const char* key) const {
    if (!obj.contains(key) || !obj[key].is_number_integer()) {
      return Missing(prefix + key, "an integer");
    }
    return obj[key].get<int64_t>();
  }
  Result<json> Object(const json& obj, const std::string& prefix, const char* key) const {
    if (!obj.contains(key) || !obj[key].is_object()) return Missing(prefix + key, "an object");
    return obj[key];
  }
  Result<std::string> FileName(const json& obj, const std::string& prefix, const char* key) const {
    FERRY_ASSIGN_OR_RETURN(std::string name, String(obj, prefix, key));
    if (!IsPlainName(name)) {
      return Status::Corruption("snapshot manifest " + file_ + ": \"" + prefix + key + "\" (" +
                                json(name).dump() + ") is not a plain file name" + kDamaged);
    }
    return name;
  }

 private:
  std::string file_;
};

Result<SnapshotManifest> ParseFields(const json& j, const std::string& file) {
  FieldReader r(file);
  SnapshotManifest m;
  m.version_major = static_cast<int>(j["version_major"].get<int64_t>());
  FERRY_ASSIGN_OR_RETURN(int64_t minor, r.Integer(j, "", "version_minor"));
  m.version_minor = static_cast<int>(minor);
  FERRY_ASSIGN_OR_RETURN(m.name, r.String(j, "", "name"));
  FERRY_ASSIGN_OR_RETURN(m.id, r.String(j, "", "id"));
  FERRY_ASSIGN_OR_RETURN(json vm, r.Object(j, "", "source_vm"));
  FERRY_ASSIGN_OR_RETURN(m.vm_name, r.String(vm, "source_vm.", "name"));
  FERRY_ASSIGN_OR_RETURN(m.vm_id, r.String(vm, "source_vm.", "id"));
  FERRY_ASSIGN_OR_RETURN(m.vm_spec, r.Object(vm, "source_vm.", "spec"));
  FERRY_ASSIGN_OR_RETURN(m.image, r.String(j, "", "image"));
  FERRY_ASSIGN_OR_RETURN(m.memory_mib, r.Unsigned(j, "", "memory_mib"));
  FERRY_ASSIGN_OR_RETURN(m.accelerator, r.String(j, "", "accelerator"));
  FERRY_ASSIGN_OR_RETURN(m.machine, r.String(j, "", "machine"));
  FERRY_ASSIGN_OR_RETURN(m.created_at_ms, r.Integer(j, "", "created_at_ms"));
  FERRY_ASSIGN_OR_RETURN(m.pause_ms, r.Integer(j, "", "pause_ms"));
  FERRY_ASSIGN_OR_RETURN(json ds, r.Object(j, "", "device_state"));
  FERRY_ASSIGN_OR_RETURN(m.device_state.file, r.FileName(ds, "device_state.", "file"));
  FERRY_ASSIGN_OR_RETURN(m.device_state.size_bytes, r.Unsigned(ds, "device_state.", "size"));
  FERRY_ASSIGN_OR_RETURN(m.device_state.sha256, r.String(ds, "device_state.", "sha256"));
  if (ds.contains("guest_ram")) {  // added in 1.2
    FERRY_ASSIGN_OR_RETURN(std::string guest_ram, r.String(ds, "device_state.", "guest_ram"));
    if (guest_ram != "skipped" && guest_ram != "stripped") {
      return r.Missing("device_state.guest_ram", "\"skipped\" or \"stripped\"");
    }
    m.device_state.guest_ram_stripped = guest_ram == "stripped";
  }
  FERRY_ASSIGN_OR_RETURN(json ram, r.Object(j, "", "ram"));
  FERRY_ASSIGN_OR_RETURN(m.ram_file, r.FileName(ram, "ram.", "file"));
  FERRY_ASSIGN_OR_RETURN(m.ram, RamImage::FromJson(ram, file));
  if (j.contains("disk")) {
    FERRY_ASSIGN_OR_RETURN(json disk, r.Object(j, "", "disk"));
    DiskImageFile d;
    FERRY_ASSIGN_OR_RETURN(d.file, r.FileName(disk, "disk.", "file"));
    FERRY_ASSIGN_OR_RETURN(d.size_bytes, r.Unsigned(disk, "disk.", "size"));
    FERRY_ASSIGN_OR_RETURN(d.sha256, r.String(disk, "disk.", "sha256"));
    if (!disk.contains("chain") || !disk["chain"].is_array()) {
      return Status::Corruption("snapshot manifest " + file + ": disk.chain is not a list" +
                                kDamaged);
    }
    for (const json& p : disk["chain"]) {
      if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>()[0] != '/') {
        return Status::Corruption("snapshot manifest " + file +
                                  ": disk.chain holds something other than absolute paths" +
                                  kDamaged);
      }
      d.chain.push_back(p.get<std::string>());
    }
    m.disk = std::move(d);
  }
  m.manifest_sha256 = j[kChecksumKey].get<std::string>();
  return m;
}

}  // namespace

json SnapshotManifest::ToJson() const {
  json ram_json = ram.ToJson();
  ram_json["file"] = ram_file;
  json j = {{"format", kFormat},
            {"version_major", kVersionMajor},
            {"version_minor", kVersionMinor},
            {"name", name},
            {"id", id},
            {"source_vm", {{"name", vm_name}, {"id", vm_id}, {"spec", vm_spec}}},
            {"image", image},
            {"memory_mib", memory_mib},
            {"accelerator", accelerator},
            {"machine", machine},
            {"created_at_ms", created_at_ms},
            {"pause_ms", pause_ms},
            {"device_state",
             {{"file", device_state.file},
              {"size", device_state.size_bytes},
              {"sha256", device_state.sha256},
              {"guest_ram", device_state.guest_ram_stripped ? "stripped" : "skipped"}}},
            {"ram", std::move(ram_json)}};
  if (disk) {
    j["disk"] = {{"file", disk->file},
                 {"size", disk->size_bytes},
                 {"sha256", disk->sha256},
                 {"chain", disk->chain}};
  }
  return j;
}

Status WriteManifest(const std::string& dir, const SnapshotManifest& manifest) {
  const std::string path = dir + "/" + SnapshotManifest::kFileName;
  if (!IsPlainName(manifest.device_state.file) || !IsPlainName(manifest.ram_file) ||
      (manifest.disk && !IsPlainName(manifest.disk->file))) {
    return Status::InvalidArgument("snapshot manifest " + path +
                                   ": data file names must be plain names inside the directory");
  }
  std::string text;
  try {
    json j = manifest.ToJson();
    j[kChecksumKey] = CanonicalDigest(j);
    text = j.dump(1) + "\n";
  } catch (const json::exception& e) {  // invalid UTF-8 in a string, most likely in vm_spec
    return Status::InvalidArgument("snapshot manifest " + path + ": cannot encode: " + e.what());
  }
  return WriteFileAtomic(path, text, 0400);
}

Result<SnapshotManifest> LoadManifest(const std::string& dir) {
  const std::string path = dir + "/" + SnapshotManifest::kFileName;
  auto text = ReadFile(path);
  if (!text.ok()) return text.status().WithContext("snapshot manifest");
  return ParseManifest(*text, path);
}

Result<SnapshotManifest> ParseManifest(std::string_view text, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("snapshot manifest " + path + ": " + why + kDamaged);
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != SnapshotManifest::kFormat) {
    return bad("wrong magic (format is not " + std::string(SnapshotManifest::kFormat) + ")");
  }
  if (!j.contains("version_major") || !j["version_major"].is_number_integer() ||
      j["version_major"].get<int64_t>() < 1) {
    return bad("no valid version_major");
  }
  // A newer major may have changed anything, the checksum included, so it is checked first.
  if (j["version_major"].get<int64_t>() > SnapshotManifest::kVersionMajor) {
    return Status::FailedPrecondition(
        "snapshot manifest " + path + ": format version " + j["version_major"].dump() +
        " is newer than this ferryd reads (" + std::to_string(SnapshotManifest::kVersionMajor) +
        "); upgrade ferry");
  }
  if (!j.contains(kChecksumKey) || !j[kChecksumKey].is_string()) {
    return bad(std::string("\"") + kChecksumKey + "\" is missing");
  }
  if (CanonicalDigest(j) != j[kChecksumKey].get<std::string>()) return bad("checksum mismatch");
  return ParseFields(j, path);
}

Result<std::string> Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return (err == ENOENT ? Status::NotFound
                          : Status::Internal)("cannot open " + path + ": " + std::strerror(err));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::vector<unsigned char> buf(size_t{1} << 20);
  Status status;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    status = Status::Internal("cannot start SHA-256 for " + path);
  }
  while (status.ok()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = Status::Internal("cannot read " + path + ": " + std::strerror(errno));
    if (n <= 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  FERRY_RETURN_IF_ERROR(status);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    return Status::Internal("cannot finish SHA-256 for " + path);
  }
  return Hex(md, len);
}

Status VerifyDeviceState(const std::string& dir, const SnapshotManifest& manifest) {
  const std::string path = dir + "/" + manifest.device_state.file;
  const std::string what = "snapshot device state " + path + ": ";
  const uint64_t want = manifest.device_state.size_bytes;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Corruption(what + "cannot stat: " + std::strerror(errno) + kDamaged);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size != want) {
    return Status::Corruption(what + (size < want ? "truncated: " : "wrong size: ") +
                              std::to_string(size) + " bytes, expected " + std::to_string(want) +
                              kDamaged);
  }
  auto digest = Sha256File(path);
  if (!digest.ok()) return digest.status().WithContext("snapshot device state");
  if (*digest != manifest.device_state.sha256) {
    return Status::Corruption(what + "checksum mismatch" + kDamaged);
  }
  return Status::Ok();
}

Status VerifyDiskImage(const std::string& dir, const SnapshotManifest& manifest) {
  if (!manifest.disk) return Status::Ok();
  const std::string path = dir + "/" + manifest.disk->file;
  const std::string what = "snapshot disk image " + path + ": ";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Corruption(what + "cannot stat: " + std::strerror(errno) + kDamaged);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size), want = manifest.disk->size_bytes;
  if (size != want) {
    return Status::Corruption(what + (size < want ? "truncated: " : "wrong size: ") +
                              std::to_string(size) + " bytes, expected " + std::to_string(want) +
                              kDamaged);
  }
  auto digest = Sha256File(path);
  if (!digest.ok()) return digest.status().WithContext("snapshot disk image");
  if (*digest != manifest.disk->sha256)
    return Status::Corruption(what + "checksum mismatch" + kDamaged);
  return Status::Ok();
}

Status VerifySnapshot(const std::string& dir, const SnapshotManifest& manifest,
                      VerifiedFiles& verified) {
  FERRY_RETURN_IF_ERROR(verified.CheckDigest(dir + "/" + manifest.device_state.file,
                                             manifest.device_state.sha256,
                                             [&] { return VerifyDeviceState(dir, manifest); }));
  if (manifest.disk) {
    FERRY_RETURN_IF_ERROR(verified.CheckDigest(dir + "/" + manifest.disk->file,
                                               manifest.disk->sha256,
                                               [&] { return VerifyDiskImage(dir, manifest); }));
  }
  return verified.Check(dir + "/" + manifest.ram_file, manifest.ram);
}

}  // namespace ferry::snapshot
