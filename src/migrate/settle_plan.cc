#include "migrate/settle_plan.h"

#include <variant>

namespace ferry::migrate {

RecoveryPlan PlanRecovery(const JournalRow& row, bool vm_here) {
  if (!vm_here) return RecoveryPlan::kForget;
  return row.phase == JournalPhase::kFinish ? RecoveryPlan::kSettle : RecoveryPlan::kRollBack;
}

SettleStep StepOnAnswer(const Result<SettledState>& answer) {
  if (!answer.ok()) return SettleStep::kAskAgain;
  switch (*answer) {
    case SettledState::kRunning:
      return SettleStep::kDropCopyHere;
    case SettledState::kAbsent:
      return SettleStep::kResumeHere;
    case SettledState::kUnsettled:
    case SettledState::kHeld:
      return SettleStep::kAskAgain;
  }
  return SettleStep::kAskAgain;
}

SettledState AnswerForQuery(std::string_view migration_id, std::string_view vm_state,
                            const vm::VmOrigin& origin) {
  if (vm_state.empty()) return SettledState::kAbsent;
  const auto* migrated = std::get_if<vm::MigrationOrigin>(&origin);
  if (!migrated || migrated->migration != migration_id) return SettledState::kAbsent;
  // Once resumed here, the copy here is the VM, whatever became of it since.
  return vm_state == "creating" ? SettledState::kUnsettled : SettledState::kRunning;
}

}  // namespace ferry::migrate
