// What a starting ferryd does with one VM of its registry, decided from the record alone
// (vm_adoption.cc carries it out). Kept apart, and pure, so that every outcome has a unit test.
//
//   record                                              plan
//   creating, no QEMU started                           kDiscard: the create never happened
//   creating, a restore (clone, migration, hold)        kKeepIfResumed: kept only if its QEMU
//                                                       runs the guest (a restore that resumed);
//                                                       else discarded, its QEMU killed
//   a QEMU started but the launch not finished          kEndInterruptedLaunch: killed, failed
//     (creating boot with a pid, or a state without
//     a process that still names a pid)
//   stopped / failed, no pid                            kNothingRuns: its tap removed
//   booting / running / paused / stopping               kReattach: by pid and start time
#pragma once

#include "vm/vm_record.h"

namespace ferry::vm {

enum class AdoptionPlan {
  kDiscard,
  kKeepIfResumed,
  kEndInterruptedLaunch,
  kNothingRuns,
  kReattach
};

AdoptionPlan PlanAdoption(const VmRecord& record);
const char* AdoptionPlanName(AdoptionPlan plan);

}  // namespace ferry::vm
