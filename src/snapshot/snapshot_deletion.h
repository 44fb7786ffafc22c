// Whether a snapshot may be deleted (SnapshotService::Delete gathers who uses it and carries the
// deletion out). Kept apart, and pure, so that each refusal has a unit test:
//
//   clones map its RAM image                refused: delete them first
//   a template is based on it               refused: delete the template first
//   its frozen disk lies under the disks    refused: a VM's disk keeps the snapshot it was
//     of VMs or of later snapshots          frozen in
//   none of these                           deleted
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::snapshot {

// FailedPrecondition when `clones` (VMs mapping its RAM image) or `templates` (based on it) use
// the snapshot `name`.
Status CheckUnmapped(const std::string& name, const std::vector<std::string>& clones,
                     const std::vector<std::string>& templates);

// FailedPrecondition when `disk_users` (VMs, and "snapshot NAME" for snapshots) have their disks
// on the snapshot's frozen disk `frozen_disk`.
Status CheckFrozenDiskUnused(const std::string& name, const std::string& frozen_disk,
                             const std::vector<std::string>& disk_users);

}  // namespace ferry::snapshot
