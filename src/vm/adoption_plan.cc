#include "vm/adoption_plan.h"

#include <variant>

#include "vm/vm_origin.h"

namespace ferry::vm {

AdoptionPlan PlanAdoption(const VmRecord& r) {
  // A clone or an incoming migration left half-done goes: a clone that has not served yet still
  // carries its parent's identity, an incoming guest that is not running must not start here
  // (its source runs it or will resume it).
  const bool restoring = r.state == VmState::kCreating &&
                         !std::holds_alternative<BootedOrigin>(OriginFromJson(r.origin));
  if (r.state == VmState::kCreating && r.pid == 0) return AdoptionPlan::kDiscard;
  if (restoring) return AdoptionPlan::kKeepIfResumed;
  if (r.pid != 0 && (r.state == VmState::kCreating || !HasProcess(r.state))) {
    return AdoptionPlan::kEndInterruptedLaunch;
  }
  if (!HasProcess(r.state)) return AdoptionPlan::kNothingRuns;
  return AdoptionPlan::kReattach;
}

const char* AdoptionPlanName(AdoptionPlan plan) {
  switch (plan) {
    case AdoptionPlan::kDiscard:
      return "discard";
    case AdoptionPlan::kKeepIfResumed:
      return "keep if resumed";
    case AdoptionPlan::kEndInterruptedLaunch:
      return "end interrupted launch";
    case AdoptionPlan::kNothingRuns:
      return "nothing runs";
    case AdoptionPlan::kReattach:
      return "reattach";
  }
  return "?";
}

}  // namespace ferry::vm
