// Confirm (migration_protocol.h): the destination runs the guest; the copy here goes. And what
// the migration's operation reports.
#include <spdlog/spdlog.h>

#include "migrate/migration_source.h"

namespace ferry::migrate {

using nlohmann::json;

void MigrationService::MigrationSource::Confirm() {
  stage_ = Stage::kConfirm;
  op_->SetPhase("confirm", 98);
  Status deleted = service_.vms_.Delete(request_.vm, /*force=*/true, /*holder=*/op_->id());
  if (!deleted.ok()) {
    spdlog::error("{}: the source copy could not be removed: {}", what_, deleted.message());
    ReleaseLease();
  }
  service_.Unjournal(op_->id());
}

json MigrationService::MigrationSource::Summary() const {
  json ram = qemu_result_.value("ram", json::object());
  return {{"vm", request_.vm},
          {"to", request_.to},
          {"total_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count()},
          {"qemu_total_ms", qemu_result_.value("total-time", 0)},
          {"downtime_ms", qemu_result_.value("downtime", 0)},
          {"ram_transferred_bytes", ram.value("transferred", uint64_t{0})},
          {"wire_bytes_sent", wire_.wire_bytes_sent},
          {"wire_bytes_received", wire_.wire_bytes_received},
          {"downtime_limit_ms", downtime_ms_},
          {"disk_bytes_copied", mirror_ ? mirror_->bytes_copied() : uint64_t{0}},
          {"disk_copy_ms", disk_copy_ms_}};
}

}  // namespace ferry::migrate
