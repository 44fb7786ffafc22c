// One guest of the migration benchmark, booted on host h1 and moved live to host h2 by one of
// the three sides: ferry (ferry_migration.h), or bare QEMU over plain TCP or over QEMU's own TLS
// (bare_migration.h). The entry (migration.cc) drives them all the same way: boot, load, move,
// check, and destroying the object removes whatever the guest left on either host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace ferry::bench {

// What one move measured. The QEMU figures are the source QEMU's own query-migrate once it
// says completed, read the same way on every side.
struct MoveFigures {
  double qemu_total_ms = 0;            // total-time: `migrate` to completed
  double qemu_downtime_ms = 0;         // downtime: guest stopped to completed, as QEMU counts it
  double qemu_setup_ms = 0;            // setup-time
  uint64_t ram_transferred_bytes = 0;  // ram.transferred
  // With a data disk: the mirror's start (connecting to the destination's export) to the job
  // being ready, before the memory migration starts; and the bytes the job copied.
  double disk_copy_ms = 0;
  uint64_t disk_bytes_copied = 0;
  // With a data disk: QEMU's pre-switchover seen to migrate-continue answered (the disk copy
  // ended in step between them), inside the downtime; by ferryd's or the benchmark's clock.
  double switchover_ms = 0;
  // Start of the move to the guest running on h2, by the benchmark's clock; each side says
  // where its clock starts (see the entry's notes).
  double wall_ms = 0;
  // ferry only: ferryd's own total_ms and the bytes its peer link sent (0 on the bare sides).
  double ferry_total_ms = 0;
  uint64_t ferry_wire_bytes_sent = 0;
  // The destination QEMU was seen gone right after the move (a guest panic ends it).
  bool destination_exited = false;
  // Diagnostics, not compared against goals: the source QEMU's whole completed query-migrate
  // reply, and its query-migrate-parameters/-capabilities as the precopy started
  // ({"parameters": ..., "capabilities": [...]}), on every side.
  nlohmann::json qemu_migrate = nlohmann::json::object();
  nlohmann::json qemu_settings = nlohmann::json::object();
};

class MigratingGuest {
 public:
  virtual ~MigratingGuest() = default;  // removes the guest from both hosts, whatever failed
  // The guest's address on the segment, where redis answers.
  virtual const std::string& address() const = 0;
  // Moves the running guest from h1 to h2. REQUIRES: called once.
  virtual Result<MoveFigures> MoveToH2() = 0;
  // The last `max_bytes` of the guest's serial console on host 1 or 2 ("" if unknown): a guest
  // that died (on h2 after the move, or on h1 under load) says why there.
  virtual std::string Console(int host, size_t max_bytes) = 0;
};

}  // namespace ferry::bench
