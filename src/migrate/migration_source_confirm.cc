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

namespace {

// A non-negative integer member of QEMU's query-migrate reply, 0 when absent or of another type:
// QEMU's reply is read with care even for a summary.
uint64_t Counter(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return 0;
  return it->get<uint64_t>();
}

}  // namespace

json MigrationService::MigrationSource::Summary() const {
  auto ram_it = qemu_result_.is_object() ? qemu_result_.find("ram") : qemu_result_.end();
  const json ram = ram_it != qemu_result_.end() ? *ram_it : json::object();
  return {{"vm", request_.vm},
          {"to", request_.to},
          {"total_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count()},
          {"qemu_total_ms", Counter(qemu_result_, "total-time")},
          {"downtime_ms", Counter(qemu_result_, "downtime")},
          {"ram_transferred_bytes", Counter(ram, "transferred")},
          {"wire_bytes_sent", wire_.wire_bytes_sent},
          {"wire_bytes_received", wire_.wire_bytes_received},
          {"downtime_limit_ms", downtime_ms_},
          {"disk_bytes_copied", mirror_ ? mirror_->bytes_copied() : uint64_t{0}},
          {"disk_copy_ms", disk_copy_ms_},
          {"switchover_disk_done_ms", switchover_seen_to_disk_done_us_ / 1000.0},
          {"switchover_continued_ms", switchover_seen_to_continued_us_ / 1000.0},
          // QEMU's own account of the memory phase and what it ran with, as QEMU gave them.
          {"qemu_migrate", qemu_result_.is_object() ? qemu_result_ : json::object()},
          {"qemu_settings", qemu_settings_.is_object() ? qemu_settings_ : json::object()}};
}

}  // namespace ferry::migrate
