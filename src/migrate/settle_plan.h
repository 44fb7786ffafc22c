// The decisions that settle an outgoing migration whose end the source did not see
// (migration_recovery.cc carries them out; migration_protocol.h, "Recovery"). Kept apart, and
// pure, so that every outcome has a unit test.
//
// A starting ferryd, for each migration its journal holds:
//   the VM is no longer here                      kForget: settled before the restart, or
//                                                 deleted by its owner
//   journalled in "perform" (the stream went      kRollBack: the destination never resumed the
//     through the ferryd that died)               guest; it runs here again
//   journalled in "finish"                        kSettle: only the destination knows; ask it
//
// The source, for each answer of the destination while it settles:
//   running                                       kDropCopyHere: the VM lives there
//   absent                                        kResumeHere: no copy there; it runs here again
//   unsettled, held, or no answer                 kAskAgain: the copy here stays paused, never
//                                                 resumed on a guess
//
// The destination, asked about migration ID of a VM:
//   a VM of that name that came by migration ID   running, or unsettled while it is still
//                                                 being created (not resumed yet)
//   anything else (no VM, another origin)         absent
#pragma once

#include <string_view>

#include "core/status.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_rows.h"
#include "vm/vm_origin.h"

namespace ferry::migrate {

enum class RecoveryPlan { kForget, kRollBack, kSettle };
RecoveryPlan PlanRecovery(const JournalRow& row, bool vm_here);

enum class SettleStep { kDropCopyHere, kResumeHere, kAskAgain };
SettleStep StepOnAnswer(const Result<SettledState>& answer);

// `vm_state` is the VM's state name (vm show), empty when no VM of that name is here.
SettledState AnswerForQuery(std::string_view migration_id, std::string_view vm_state,
                            const vm::VmOrigin& origin);

}  // namespace ferry::migrate
