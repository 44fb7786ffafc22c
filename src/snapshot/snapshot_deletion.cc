#include "snapshot/snapshot_deletion.h"

namespace ferry::snapshot {
namespace {

std::string Listed(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

}  // namespace

Status CheckUnmapped(const std::string& name, const std::vector<std::string>& clones,
                     const std::vector<std::string>& templates) {
  if (!clones.empty()) {
    return Status::FailedPrecondition("snapshot " + name + " is mapped by " +
                                      std::to_string(clones.size()) + " clone(s) (" +
                                      Listed(clones) + "); delete them first");
  }
  if (!templates.empty()) {
    return Status::FailedPrecondition("snapshot " + name + " is the base of template " +
                                      templates.front() + "; delete the template first");
  }
  return Status::Ok();
}

Status CheckFrozenDiskUnused(const std::string& name, const std::string& frozen_disk,
                             const std::vector<std::string>& disk_users) {
  if (disk_users.empty()) return Status::Ok();
  return Status::FailedPrecondition(
      "snapshot " + name + ": its frozen disk " + frozen_disk + " is the base of the disks of " +
      Listed(disk_users) +
      "; delete those first (a VM's disk keeps the snapshot it was frozen in)");
}

}  // namespace ferry::snapshot
