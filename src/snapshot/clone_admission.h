// Admission of clones of a snapshot (snapshot_clone.cc carries it out), kept apart and pure so
// that each rule has a unit test (clone_admission_test.cc):
//
//   how many       1 to 1000, and as many names as clones when names are given
//   their names    given, or SOURCE-c1, SOURCE-c2, ... skipping those taken; each a valid name
//                  no VM has yet
//   their address  a clone of a VM on tap networking needs one of its own; one of a VM on user
//                  networking takes none
//   its QEMU       a template's pool QEMU when given one; else a spare of its shape when spares
//                  are kept and one is ready; else one of its own. A pool QEMU being made takes
//                  neither.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::snapshot {

constexpr int kMaxClonesPerRequest = 1000;

// InvalidArgument when `count` clones named by `names` (empty: named by ferryd) are not a request.
Status CheckCloneCount(int count, size_t names);

// The clones' names: `names` when given, else the first `count` free SOURCE-cN (`exists` says
// which VM names are taken). Refused when one is not a valid name or is taken.
Result<std::vector<std::string>> CloneNamesFor(
    const std::string& source, int count, const std::vector<std::string>& names,
    const std::function<bool(const std::string&)>& exists);

// A clone (its parent's spec in `spec`, renamed) takes `ip` as its own address when its parent
// was on tap networking; `what` names the snapshot for errors.
Status TakeCloneAddress(vm::VmSpec& spec, const std::string& ip, const std::string& what);

enum class CloneQemu {
  kOwn,           // started for it
  kSpareIfReady,  // a spare of its shape (spare_qemus.h) if one waits, else its own
  kWarmPool,      // the template pool's QEMU it was given
};
// `for_pool`: the plan is of a pool QEMU itself, not of a clone; `warm`: a pool QEMU was given;
// `spares_kept`: ferryd keeps spares.
CloneQemu CloneQemuFor(bool for_pool, bool warm, bool spares_kept);

}  // namespace ferry::snapshot
