// manifest.json: what a snapshot directory holds and the checks that prove it intact.
//
// A snapshot is a directory SNAPDIR/ with
//   ram            the guest's RAM at the pause, sparse, mode 0400 (see ram_image.h)
//   device.state   QEMU's migration stream of device state (opaque bytes, about 1 MB)
//   manifest.json  this manifest, mode 0400
// The manifest carries a magic ("format"), a version (major.minor: a newer minor only adds fields
// and is read; a newer major is refused) and "manifest_sha256", the SHA-256 of the canonical JSON
// of every other field, including fields a newer minor added. nlohmann's dump() is canonical for
// a parsed object (keys sorted, no spaces, numbers and strings re-serialised the same way), so the
// file itself may be pretty-printed. The manifest protects the RAM chunk table and the device
// state's SHA-256, which in turn protect the bytes of the other two files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "snapshot/ram_image.h"
#include "snapshot/verified_files.h"

namespace ferry::snapshot {

struct DeviceStateFile {
  std::string file = "device.state";  // a plain name inside the snapshot directory
  uint64_t size_bytes = 0;
  std::string sha256;  // lowercase hex
  // How the stream leaves out the guest's RAM, which is in the RAM image (added in 1.2; absent
  // means skipped): "skipped" by QEMU (x-ignore-shared on when saved, so loaded with it on), or
  // "stripped" by ferry from a stream that had it (a pre-copied snapshot, ram_precopy.h: loaded
  // with x-ignore-shared off).
  bool guest_ram_stripped = false;
  bool operator==(const DeviceStateFile&) const = default;
};

// The VM's data disk as the snapshot froze it: a qcow2 image that is never written again. It
// lives outside the snapshot directory (frozen images are shared by the VM's next overlay and
// by clones), linked from it under `file`. Added in format 1.1; absent when the VM had no disk.
struct DiskImageFile {
  std::string file = "disk.qcow2";  // a plain name inside the snapshot directory
  uint64_t size_bytes = 0;
  std::string sha256;
  std::vector<std::string> chain;  // frozen images it lies on, nearest first (absolute paths)
  bool operator==(const DiskImageFile&) const = default;
};

struct SnapshotManifest {
  static constexpr const char* kFormat = "ferry-snapshot";
  static constexpr int kVersionMajor = 1;
  static constexpr int kVersionMinor = 2;
  static constexpr const char* kFileName = "manifest.json";

  // As read from the file; WriteManifest always writes kVersionMajor.kVersionMinor.
  int version_major = kVersionMajor;
  int version_minor = kVersionMinor;
  std::string name;  // the snapshot's name, unique per source VM ("warm")
  std::string id;
  std::string vm_name;  // the VM the snapshot was taken of
  std::string vm_id;
  nlohmann::json vm_spec = nlohmann::json::object();  // opaque here: vm::VmSpec::FromJson reads it
  std::string image;
  uint64_t memory_mib = 0;
  std::string accelerator;    // "kvm" or "tcg": a clone must run on the same one
  std::string machine;        // opaque description of machine type and CPU model
  int64_t created_at_ms = 0;  // Unix time
  int64_t pause_ms = 0;       // how long the source VM stood paused
  DeviceStateFile device_state;
  std::string ram_file = "ram";  // a plain name inside the snapshot directory
  RamImage ram;
  std::optional<DiskImageFile> disk;
  std::string manifest_sha256;  // lowercase hex; set by LoadManifest

  // Every field but manifest_sha256, stamped with this build's version.
  nlohmann::json ToJson() const;
};

// Writes DIR/manifest.json atomically (temporary file, fsync, rename) and makes it mode 0400.
Status WriteManifest(const std::string& dir, const SnapshotManifest& manifest);

// Reads and checks DIR/manifest.json. Bad JSON, a wrong magic, a missing or ill-typed field, a
// file name that leaves DIR, or a checksum mismatch is Corruption; a newer major version is
// FailedPrecondition ("upgrade ferry"). Every message names the file.
Result<SnapshotManifest> LoadManifest(const std::string& dir);
// The checks of LoadManifest on the file's contents; `path` names the file in errors.
Result<SnapshotManifest> ParseManifest(std::string_view text, const std::string& path);

// Lowercase hex SHA-256 of a file's contents, read in 1 MiB pieces.
Result<std::string> Sha256File(const std::string& path);

// Checks DIR/<device state file> against the manifest: size ("truncated" when shorter), then
// SHA-256. Damage is Corruption naming the file.
Status VerifyDeviceState(const std::string& dir, const SnapshotManifest& manifest);
// The frozen disk image's size and SHA-256, read whole.
Status VerifyDiskImage(const std::string& dir, const SnapshotManifest& manifest);

// Checks the data files of a loaded manifest (device state, frozen disk image, RAM) through
// `verified`, which turns repeat checks of an unchanged file into a stat.
Status VerifySnapshot(const std::string& dir, const SnapshotManifest& manifest,
                      VerifiedFiles& verified);

}  // namespace ferry::snapshot
