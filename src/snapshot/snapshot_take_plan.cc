#include "snapshot/snapshot_take_plan.h"

#include <algorithm>

namespace ferry::snapshot {

bool DiskAllowsLiveCopy(bool has_disk, const Result<std::vector<std::string>>& node_names,
                        const std::string& file_node) {
  if (!has_disk) return true;
  // A top that an older ferryd froze into a QEMU still running has its file inside the qcow2
  // node: at the cont after a live copy QEMU could not take the disk's write lock back and the
  // VM stayed paused, so that VM is copied paused, as it was then. Unknown: paused too.
  if (!node_names.ok()) return false;
  return std::find(node_names->begin(), node_names->end(), file_node) != node_names->end();
}

SnapshotCopy CopyFor(vm::VmState state, SnapshotCopy mode, bool disk_allows_live) {
  // A paused guest writes nothing: the copy costs no extra pause.
  if (state == vm::VmState::kPaused || mode == SnapshotCopy::kPaused || !disk_allows_live) {
    return SnapshotCopy::kPaused;
  }
  return SnapshotCopy::kLive;
}

Status CopyWhilePaused(bool running, const std::function<Status()>& stop,
                       const std::function<Status()>& capture,
                       const std::function<Status()>& resume) {
  if (running) FERRY_RETURN_IF_ERROR(stop());
  // From here on the VM must be resumed whatever happens.
  Status captured = capture();
  Status resumed = running ? resume() : Status::Ok();
  FERRY_RETURN_IF_ERROR(captured);
  if (!resumed.ok()) {
    return Status::Unavailable("the VM did not resume after the snapshot: " + resumed.message());
  }
  return Status::Ok();
}

Status RunTake(TakeSteps& steps) {
  Status st = steps.Prepare();
  if (st.ok()) st = steps.Capture();
  if (st.ok()) st = steps.WriteDir();
  if (st.ok()) st = steps.Register();
  if (!st.ok()) steps.Discard();
  return st;
}

}  // namespace ferry::snapshot
