#include "snapshot/snapshot_transfer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.h"
#include "core/ids.h"
#include "core/unique_fd.h"
#include "crypto/openssl_util.h"
#include "snapshot/verified_files.h"
#include "vm/vm_policy.h"

namespace ferry::snapshot {

using nlohmann::json;

namespace {

// A new file `path` written by `write`, then made read-only.
Status WriteNewFile(const std::string& path, int mode, const BlobWriter& write,
                    const std::string& what) {
  auto made = CreateExclusive(path, O_RDWR, 0600);
  if (!made.ok()) return made.status().WithContext(what);
  UniqueFd fd(*made);
  FERRY_RETURN_IF_ERROR(write(fd.get()).WithContext(what));
  if (::fsync(fd.get()) != 0 || ::fchmod(fd.get(), mode) != 0) {
    return Status::Internal(what + ": cannot finish " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// The RAM directory's room for an image of `data_bytes` beyond what running VMs may still take.
Status CheckRamRoom(vm::VmService& vms, const SnapshotManifest& m, const std::string& what) {
  auto headroom = HeadroomIn(vms.config().ram_dir);
  if (headroom.ok() && m.ram.data_bytes > *headroom) {
    return Status::ResourceExhausted(
        what + ": its RAM image needs " + std::to_string(m.ram.data_bytes >> 20) + " MiB but " +
        vms.config().ram_dir + " can spare " + std::to_string(*headroom >> 20) +
        " MiB beyond what running VMs' RAM may still take; delete snapshots or VMs there");
  }
  return Status::Ok();
}

// The files of the snapshot in `partial` and `ram`, checked; the directory then renamed to `dir`.
Status WriteSnapshotFiles(vm::VmService& vms, const SnapshotManifest& m, const std::string& partial,
                          const std::string& dir, const std::string& ram,
                          const BlobWriter& write_ram, const BlobWriter& write_device_state,
                          const std::string& what) {
  FERRY_RETURN_IF_ERROR(MakeDirs(partial, 0700));
  FERRY_RETURN_IF_ERROR(MakeDirs(vms.config().ram_dir + "/snapshots", 0700));
  FERRY_RETURN_IF_ERROR(WriteNewFile(ram, 0400, write_ram, what + ": its RAM image"));
  // Clones map the image copy-on-write; see VmService::ShareRamImage for who may open it.
  FERRY_RETURN_IF_ERROR(vms.ShareRamImage(ram));
  FERRY_RETURN_IF_ERROR(WriteNewFile(partial + "/" + m.device_state.file, 0400, write_device_state,
                                     what + ": its device state"));
  if (::symlink(ram.c_str(), (partial + "/" + m.ram_file).c_str()) != 0) {
    return Status::Internal(what + ": cannot link the RAM image into " + partial);
  }
  FERRY_RETURN_IF_ERROR(WriteManifest(partial, m));
  // The bytes the store gave back are the bytes the snapshot was taken with.
  VerifiedFiles verified;
  FERRY_ASSIGN_OR_RETURN(SnapshotManifest written, LoadManifest(partial));
  FERRY_RETURN_IF_ERROR(VerifySnapshot(partial, written, verified).WithContext(what));
  if (::rename(partial.c_str(), dir.c_str()) != 0) {
    return Status::AlreadyExists(what + ": cannot move it to " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<StoredSnapshot> FindStoredSnapshot(SnapshotTable& rows, const std::string& name) {
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot", name));
  FERRY_ASSIGN_OR_RETURN(std::optional<SnapshotRow> row, rows.Find(name));
  if (row) {
    StoredSnapshot s;
    s.name = name;
    s.dir = row->dir;
    s.ram = row->ram;
    s.policy_sha256 = row->policy_sha256;
    auto m = LoadManifest(s.dir);
    if (!m.ok()) return m.status().WithContext("snapshot " + name);
    s.manifest = std::move(m).value();
    auto spec = vm::VmSpec::FromJson(s.manifest.vm_spec.value("spec", json::object()));
    if (!spec.ok()) return spec.status().WithContext("snapshot " + name + ": its VM spec");
    s.spec = std::move(spec).value();
    return s;
  }
  return Status::NotFound("snapshot " + name + " does not exist; `ferry snapshot list` shows them");
}

Status CheckSnapshotClonable(vm::VmService& vms, const StoredSnapshot& s, const std::string& what) {
  const SnapshotManifest& m = s.manifest;
  // Verifies the policy's signature and binding too: an edited policy is refused here.
  FERRY_RETURN_IF_ERROR(vm::CheckSpecCloneAllowed(s.spec, what));
  if (s.policy_sha256 &&
      *s.policy_sha256 != (s.spec.policy.empty() ? "" : crypto::Sha256Hex(s.spec.policy))) {
    return Status::Corruption("snapshot " + m.name + ": the owner policy in " + s.dir +
                              "/manifest.json is not the one vm " + m.vm_name +
                              " had when the snapshot was taken; the snapshot is refused");
  }
  // The owner's latest word: a policy replaced since the snapshot may forbid clones now.
  auto source = vms.Get(m.vm_name);
  if (source.ok() && source->id == m.vm_id) {
    FERRY_RETURN_IF_ERROR(vm::CheckSpecCloneAllowed(source->spec, what));
  }
  return Status::Ok();
}

Status AdoptReceivedSnapshot(vm::VmService& vms, SnapshotTable& rows, const SnapshotManifest& m,
                             const std::string& from, const BlobWriter& write_ram,
                             const BlobWriter& write_device_state) {
  const std::string what = "snapshot " + m.name + " from " + from;
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot", m.name));
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot id", m.id));
  if (m.disk) {
    return Status::FailedPrecondition(what +
                                      " has a data disk; snapshots with disks are not "
                                      "sent yet");
  }
  if (FindStoredSnapshot(rows, m.name).status().code() != Status::Code::kNotFound) {
    return Status::AlreadyExists("snapshot " + m.name +
                                 " exists on this host already; delete "
                                 "it here first, or send it under another name");
  }
  FERRY_RETURN_IF_ERROR(CheckRamRoom(vms, m, what));
  const std::string dir = vms.config().state_dir + "/snapshots/" + m.name;
  const std::string partial = dir + ".partial-" + RandomHex(4);
  const std::string ram = vms.config().ram_dir + "/snapshots/" + m.id + ".ram";
  if (PathExists(ram) || PathExists(dir)) {
    return Status::AlreadyExists(what + ": " + (PathExists(ram) ? ram : dir) +
                                 " exists on this host; delete that snapshot here first");
  }
  Status st = WriteSnapshotFiles(vms, m, partial, dir, ram, write_ram, write_device_state, what);
  if (st.ok()) {
    auto spec = vm::VmSpec::FromJson(m.vm_spec.value("spec", json::object()));
    const std::string policy = spec.ok() ? spec->policy : "";
    SnapshotRow row;
    row.id = m.id;
    row.vm = m.vm_name;
    row.dir = dir;
    row.ram = ram;
    row.policy_sha256 = policy.empty() ? "" : crypto::Sha256Hex(policy);
    row.received_from = from;
    st = rows.Insert(m.name, row);
    if (!st.ok()) RemoveAll(dir);
  }
  if (!st.ok()) {
    RemoveAll(partial);
    ::unlink(ram.c_str());
    return st;
  }
  spdlog::info("{}: kept here as snapshot {} ({})", what, m.name, dir);
  return Status::Ok();
}

}  // namespace ferry::snapshot
