#include "snapshot/disk_recovery.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "qemu/launch_spec.h"
#include "registry/table.h"
#include "vm/vm_disk.h"

namespace ferry::snapshot {

namespace {

constexpr const char* kNodePrefix = "top-";
constexpr const char* kOverlayPrefix = "disk-";
constexpr const char* kImageSuffix = ".qcow2";
constexpr const char* kLogSuffix = ".qemu-img.log";

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The ID of an overlay DIR/disk-ID.qcow2 ("" for any other name).
std::string OverlayId(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename();
  const std::string prefix = kOverlayPrefix;
  if (name.rfind(prefix, 0) != 0 || !EndsWith(name, kImageSuffix)) return "";
  return name.substr(prefix.size(), name.size() - prefix.size() - std::string(kImageSuffix).size());
}

std::string OverlayPath(const std::string& dir, const std::string& id) {
  return dir + "/" + kOverlayPrefix + id + kImageSuffix;
}

std::string FrozenPath(const std::string& frozen_dir, const std::string& id) {
  return frozen_dir + "/" + id + kImageSuffix;
}

// One VM after planning: the record as it will be, and whether its files may be touched.
struct Planned {
  const VmDiskState* vm;
  std::string top;
  std::vector<std::string> chain;
  std::string old_top;  // the top a roll-forward replaced, "" for none
  bool sure = true;
};

// Regular files (not links) in `dir` whose names pass `wanted`, as full paths.
std::vector<std::string> FilesIn(const std::string& dir, bool (*wanted)(const std::string&)) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && !entry.is_symlink(ec) &&
        wanted(entry.path().filename().string())) {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsDiskFile(const std::string& name) {
  const bool disk = name == std::string("disk") + kImageSuffix ||
                    (name.rfind(kOverlayPrefix, 0) == 0 && EndsWith(name, kImageSuffix));
  return disk || (name.rfind("disk", 0) == 0 && EndsWith(name, kLogSuffix));
}

bool IsImage(const std::string& name) { return EndsWith(name, kImageSuffix); }

// Paths are compared as strings: a state directory given another way than when a record was
// written (through a link, with a trailing "/.") must not make a frozen image look unused.
std::string Canonical(const std::string& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::path(path).lexically_normal().string() : canonical.string();
}

std::vector<std::string> Canonical(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(Canonical(p));
  return out;
}

}  // namespace

std::string OverlayNodeName(const std::string& overlay_path) {
  return qemu::DiskNodeName(overlay_path);
}

namespace {

// One VM's disk: where it is now (rolled forward when a snapshot switched it unrecorded), or kept
// as it is when that cannot be known for sure.
Planned PlanVmDisk(const DiskStartState& state, const VmDiskState& v, DiskRecoveryPlan& plan) {
  Planned p{&v, v.top, v.chain, "", true};
  auto roll_forward = [&](const std::string& id, const std::string& why) {
    const std::string frozen = FrozenPath(state.frozen_dir, id);
    std::vector<std::string> chain = {frozen};
    chain.insert(chain.end(), v.chain.begin(), v.chain.end());
    plan.roll_forward.push_back({v.vm, OverlayPath(v.dir, id), chain, frozen, why});
    p.old_top = v.top;
    p.top = OverlayPath(v.dir, id);
    p.chain = chain;
  };
  auto keep = [&](const std::string& why) {
    plan.kept.push_back("vm " + v.vm + ": " + why +
                        "; its disk files and every frozen image are kept");
    p.sure = false;
  };
  if (v.qemu == VmDiskState::Qemu::kUnknown) {
    keep("its QEMU runs but did not say which image its disk writes");
  } else if (v.qemu == VmDiskState::Qemu::kNode &&
             v.qemu_node.rfind(std::string(kNodePrefix) + kOverlayPrefix, 0) == 0 &&
             v.qemu_node != OverlayNodeName(v.top)) {
    // QEMU switched to a snapshot's overlay that the record does not name.
    const std::string id =
        v.qemu_node.substr(std::string(kNodePrefix).size() + std::string(kOverlayPrefix).size());
    const std::string overlay = OverlayPath(v.dir, id);
    if (Contains(v.files, overlay) &&
        Contains(state.frozen_files, FrozenPath(state.frozen_dir, id))) {
      roll_forward(id, "its QEMU writes " + overlay + " (node " + v.qemu_node +
                           ") but its record names " + v.top +
                           ": a snapshot switched the disk and ferryd stopped before recording "
                           "it");
    } else {
      keep("its QEMU writes node " + v.qemu_node + " but its overlay " + overlay +
           " or the frozen image under it is missing");
    }
  } else if (v.qemu == VmDiskState::Qemu::kNotRunning && !v.top_exists) {
    // No QEMU to ask: a snapshot that got past its switch unlinked the old top, and the one
    // overlay here on a frozen image of the same ID is where the disk went.
    std::vector<std::string> ids;
    for (const std::string& f : v.files) {
      const std::string id = OverlayId(f);
      const std::string frozen = FrozenPath(state.frozen_dir, id);
      auto backing = v.backing.find(f);
      if (!id.empty() && f != v.top && Contains(state.frozen_files, frozen) &&
          backing != v.backing.end() && backing->second == frozen) {
        ids.push_back(id);
      }
    }
    if (ids.size() == 1) {
      roll_forward(ids[0], "its record names " + v.top + ", which is gone, and " +
                               OverlayPath(v.dir, ids[0]) + " lies on " +
                               FrozenPath(state.frozen_dir, ids[0]) +
                               ": a snapshot switched the disk and ferryd stopped before "
                               "recording it");
    } else {
      keep("its disk " + v.top + " is missing and " +
           (ids.empty() ? std::string("no overlay here finishes a snapshot")
                        : std::to_string(ids.size()) + " overlays here could be its disk"));
    }
  }
  return p;
}

// What no VM's disk and no snapshot needs, removed only when every VM's disk is known for sure.
void PlanRemovals(const DiskStartState& state, const std::vector<Planned>& planned, bool all_sure,
                  DiskRecoveryPlan& plan) {
  std::set<std::string> referenced = state.kept_by_snapshots;
  for (const Planned& p : planned) {
    referenced.insert(p.top);
    referenced.insert(p.chain.begin(), p.chain.end());
  }
  for (const Planned& p : planned) {
    if (!p.sure) continue;
    const VmDiskState& v = *p.vm;
    for (const std::string& f : v.files) {
      if (referenced.count(f)) continue;
      std::string why;
      if (EndsWith(f, kLogSuffix)) {
        why = "the log of a qemu-img run that never finished (a snapshot of vm " + v.vm +
              " that ferryd left unfinished)";
      } else if (f == p.old_top) {
        why = "the image vm " + v.vm + " wrote before its snapshot switched the disk; it lives " +
              "on as " + p.chain.front();
      } else {
        why = "vm " + v.vm + " writes " + p.top +
              ", not this overlay: a snapshot that ferryd left unfinished before it switched " +
              "the disk";
      }
      plan.remove.push_back({f, why});
    }
  }
  if (!state.snapshots_known) {
    plan.kept.push_back(
        "frozen images are kept: a registered snapshot could not be read, and "
        "its disk may lie on any of them");
  } else if (all_sure) {
    for (const std::string& f : state.frozen_files) {
      if (referenced.count(f)) continue;
      plan.remove.push_back({f,
                             "frozen disk image: no VM's disk lies on it and no snapshot "
                             "keeps it (a snapshot that ferryd left unfinished, or one whose "
                             "VM has been deleted since)"});
    }
  }
}

}  // namespace

DiskRecoveryPlan PlanDiskRecovery(const DiskStartState& state) {
  DiskRecoveryPlan plan;
  std::vector<Planned> planned;
  bool all_sure = true;
  for (const VmDiskState& v : state.vms) {
    Planned p = PlanVmDisk(state, v, plan);
    all_sure = all_sure && p.sure;
    planned.push_back(std::move(p));
  }
  PlanRemovals(state, planned, all_sure, plan);
  return plan;
}

void RecoverDisks(vm::VmService& vms, registry::Registry& registry,
                  const std::set<std::string>& kept_by_snapshots, bool snapshots_known) {
  DiskStartState state;
  state.frozen_dir = Canonical(vms.config().state_dir + "/disks");
  state.frozen_files = FilesIn(state.frozen_dir, IsImage);
  for (const auto& kept : kept_by_snapshots) state.kept_by_snapshots.insert(Canonical(kept));
  state.snapshots_known = snapshots_known;
  auto records = registry::Table<vm::VmRecord>(registry).List();
  if (!records.ok()) {
    spdlog::warn("start-up sweep of disk files skipped: {}", records.status().message());
    return;
  }
  for (const auto& [name, r] : *records) {
    if (r.disk_path.empty()) continue;
    VmDiskState v;
    v.vm = r.spec.name;
    v.dir = Canonical(r.dir.empty() ? vm::VmPaths::For(vms.config().state_dir, r.spec.name).dir
                                    : r.dir);
    v.top = Canonical(r.disk_path);
    v.chain = Canonical(r.disk_chain);
    struct stat st;
    v.top_exists = ::stat(r.disk_path.c_str(), &st) == 0;
    auto node = vms.DiskNode(r.spec.name);
    if (!node.ok()) {
      v.qemu = VmDiskState::Qemu::kUnknown;
      spdlog::warn("start-up sweep: {}", node.status().message());
    } else if (node->has_value()) {
      v.qemu = VmDiskState::Qemu::kNode;
      v.qemu_node = **node;
    }
    v.files = FilesIn(v.dir, IsDiskFile);
    for (const std::string& f : v.files) {
      if (!IsImage(f)) continue;
      auto backing = vm::Qcow2BackingFile(f);
      v.backing[f] = backing.ok() && !backing->empty() ? Canonical(*backing) : "";
    }
    state.vms.push_back(std::move(v));
  }

  const DiskRecoveryPlan plan = PlanDiskRecovery(state);
  for (const std::string& why : plan.kept) spdlog::warn("start-up sweep: {}", why);
  bool recorded = true;
  for (const DiskRollForward& r : plan.roll_forward) {
    Status st = vms.SetDisk(r.vm, r.top, r.chain);
    if (!st.ok()) {
      spdlog::error("start-up sweep: vm {}: {}; its disk files are kept", r.vm, st.message());
      recorded = false;
      continue;
    }
    ::chmod(r.frozen.c_str(), 0400);  // frozen images are never written again
    spdlog::warn("start-up sweep: vm {}: its disk is now {} on frozen image {}: {}", r.vm, r.top,
                 r.frozen, r.why);
  }
  if (!recorded) return;
  for (const DiskRemoval& r : plan.remove) {
    if (::unlink(r.path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("start-up sweep: cannot remove {}: {}", r.path, std::strerror(errno));
      continue;
    }
    spdlog::warn("start-up sweep: removed {}: {}", r.path, r.why);
  }
}

}  // namespace ferry::snapshot
