#include "snapshot/snapshot_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "core/files.h"
#include "core/ids.h"
#include "snapshot/disk_recovery.h"
#include "snapshot/snapshot_deletion.h"
#include "snapshot/snapshot_manifest.h"

namespace ferry::snapshot {

using nlohmann::json;

SnapshotService::SnapshotService(vm::VmService& vms, registry::Registry& registry)
    : vms_(vms), registry_(registry), rows_(registry), templates_(registry) {
  SweepLeftovers();
}

void SnapshotService::SweepLeftovers() {
  auto all = rows_.List();
  if (!all.ok()) {
    spdlog::warn("start-up sweep of snapshots skipped: {}", all.status().message());
    return;
  }
  // Compared by file name: every snapshot directory, and every RAM image, lies in one directory.
  std::set<std::string> kept;
  // The frozen disk images the snapshots keep: each one's own (named by its id, whatever its
  // manifest says) and those it lies on.
  std::set<std::string> frozen_kept;
  bool snapshots_known = true;
  for (const auto& [name, row] : *all) {
    kept.insert(std::filesystem::path(row.dir).filename());
    kept.insert(std::filesystem::path(row.ram).filename());
    frozen_kept.insert(vms_.config().state_dir + "/disks/" + row.id + ".qcow2");
    auto m = LoadManifest(row.dir);
    if (!m.ok()) {
      snapshots_known = false;
    } else if (m->disk) {
      auto frozen = FrozenDiskOf(row.dir, *m);
      if (!frozen.ok()) snapshots_known = false;
      if (frozen.ok()) frozen_kept.insert(*frozen);
      frozen_kept.insert(m->disk->chain.begin(), m->disk->chain.end());
    }
  }
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(vms_.config().state_dir + "/snapshots", ec)) {
    const std::string dir = entry.path().string();
    if (kept.count(entry.path().filename()) || !entry.is_directory(ec)) continue;
    RemoveAll(dir);
    spdlog::warn(
        "start-up sweep: removed snapshot directory {}: no snapshot in the registry owns "
        "it (a snapshot that ferryd left unfinished)",
        dir);
  }
  for (const auto& entry :
       std::filesystem::directory_iterator(vms_.config().ram_dir + "/snapshots", ec)) {
    const std::string ram = entry.path().string();
    if (kept.count(entry.path().filename()) || entry.path().extension() != ".ram" ||
        !vms_.VmsMapping(ram).empty()) {
      continue;
    }
    ::unlink(ram.c_str());
    spdlog::warn(
        "start-up sweep: removed RAM image {}: no snapshot in the registry owns it (a "
        "snapshot that ferryd left unfinished)",
        ram);
  }
  RecoverDisks(vms_, registry_, frozen_kept, snapshots_known);
}

SnapshotService::Paths SnapshotService::PathsFor(const std::string& name,
                                                 const std::string& id) const {
  return {vms_.config().state_dir + "/snapshots/" + name,
          vms_.config().ram_dir + "/snapshots/" + id + ".ram", std::nullopt};
}

Result<SnapshotService::Paths> SnapshotService::Find(const std::string& name) {
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot", name));
  FERRY_ASSIGN_OR_RETURN(std::optional<SnapshotRow> row, rows_.Find(name));
  if (row) return Paths{row->dir, row->ram, row->policy_sha256};
  return Status::NotFound("snapshot " + name + " does not exist; `ferry snapshot list` shows them");
}

Result<std::shared_ptr<Operation>> SnapshotService::Create(const std::string& vm,
                                                           const std::string& name) {
  FERRY_RETURN_IF_ERROR(ValidateName("snapshot", name));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Find(name).ok() || in_progress_.count(name)) {
      return Status::AlreadyExists("snapshot " + name + " already exists; choose another name");
    }
    auto rec = vms_.Get(vm);
    if (!rec.ok()) return rec.status();
    FERRY_RETURN_IF_ERROR(CheckSnapshotAllowed(rec->spec, "snapshot " + vm + "@" + name));
    in_progress_.insert(name);
  }
  auto op = vms_.operations().Start("snapshot", vm + "@" + name);
  vms_.InBackground(
      [this, vm, name, op] {
        Status st = TakeSnapshot(vm, name, *op);
        {
          std::lock_guard<std::mutex> lock(mu_);
          in_progress_.erase(name);
        }
        if (!st.ok()) op->Fail(st);
      },
      op);
  return op;
}

Result<std::string> SnapshotService::FrozenDiskOf(const std::string& dir,
                                                  const SnapshotManifest& m) {
  const std::string link = dir + "/" + m.disk->file;
  char target[4096];
  ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0 || target[0] != '/') {
    return Status::Corruption("snapshot disk image " + link +
                              " is not a link to the frozen image; the snapshot is damaged, "
                              "take a new one");
  }
  return std::string(target, static_cast<size_t>(n));
}

std::vector<std::string> SnapshotService::SnapshotsOnDisk(const std::string& frozen) {
  std::vector<std::string> names;
  auto all = rows_.List();
  if (!all.ok()) return names;
  for (const auto& [other, row] : *all) {
    auto m = LoadManifest(row.dir);
    if (!m.ok() || !m->disk) continue;
    const auto& chain = m->disk->chain;
    if (std::find(chain.begin(), chain.end(), frozen) != chain.end()) names.push_back(other);
  }
  return names;
}

json SnapshotService::List() {
  json out = json::array();
  auto all = rows_.List();
  if (!all.ok()) return out;
  for (const auto& [name, row] : *all) {
    json item = {{"name", name}, {"vm", row.vm}, {"clones", vms_.VmsMapping(row.ram)}};
    if (!row.received_from.empty()) item["received_from"] = row.received_from;
    auto m = LoadManifest(row.dir);
    if (m.ok()) {
      item["memory_mib"] = m->memory_mib;
      item["created_at_ms"] = m->created_at_ms;
      item["pause_ms"] = m->pause_ms;
      item["ram_data_bytes"] = m->ram.data_bytes;
    } else {
      item["error"] = m.status().message();
    }
    out.push_back(item);
  }
  return out;
}

Result<json> SnapshotService::Show(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(name));
  auto m = LoadManifest(paths.dir);
  if (!m.ok()) return m.status().WithContext("snapshot " + name);
  json j = m->ToJson();
  j.erase("ram");
  j["vm"] = m->vm_name;
  j["device_state_bytes"] = m->device_state.size_bytes;
  j["ram_data_bytes"] = m->ram.data_bytes;
  j["ram_size_bytes"] = m->ram.size_bytes;
  j["dir"] = paths.dir;
  j["ram_path"] = paths.ram;
  j["manifest_sha256"] = m->manifest_sha256;
  j["clones"] = vms_.VmsMapping(paths.ram);
  return j;
}

Status SnapshotService::Delete(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(name));
  std::vector<std::string> based_on;
  auto templates = templates_.List();
  if (templates.ok()) {
    for (const auto& [t, row] : *templates) {
      if (row.snapshot == name) based_on.push_back(t);
    }
  }
  FERRY_RETURN_IF_ERROR(CheckUnmapped(name, vms_.VmsMapping(paths.ram), based_on));
  std::string frozen_disk;
  auto m = LoadManifest(paths.dir);
  if (m.ok() && m->disk) {
    FERRY_ASSIGN_OR_RETURN(frozen_disk, FrozenDiskOf(paths.dir, *m));
    std::vector<std::string> users = vms_.VmsUsingDisk(frozen_disk);
    for (const auto& other : SnapshotsOnDisk(frozen_disk)) users.push_back("snapshot " + other);
    FERRY_RETURN_IF_ERROR(CheckFrozenDiskUnused(name, frozen_disk, users));
  }
  FERRY_RETURN_IF_ERROR(rows_.Delete(name));
  if (!frozen_disk.empty()) ::unlink(frozen_disk.c_str());
  verified_.ForgetUnder(paths.dir);  // its RAM link, device state and disk link
  ::unlink(paths.ram.c_str());
  RemoveAll(paths.dir);
  return Status::Ok();
}

}  // namespace ferry::snapshot
