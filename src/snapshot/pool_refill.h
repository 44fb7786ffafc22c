// What the keepers of QEMUs started ahead of need do next: a template's warm pools
// (template_service.h) and the spares of plain clones (spare_qemus.h). They start one QEMU at a
// time, and none while a clone a user waits for is running: a QEMU starting up would take its
// CPU. Kept apart, and pure, so that each rule has a unit test (pool_refill_test.cc).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::snapshot {

// One template's warm pool, its dead QEMUs dropped.
struct PoolLevel {
  int ready = 0;               // QEMUs waiting
  int starting = 0;            // QEMUs the keeper is starting
  int size = 0;                // what the template asks for
  bool clone_running = false;  // the clone that last took a QEMU from it is still running
};

// How many ready QEMUs go (the newest first) from a pool whose size was lowered.
int Surplus(const PoolLevel& pool);

struct RefillPlan {
  std::string start_for;       // the pool to start one QEMU for; "" for none now
  bool clone_running = false;  // some pool waits for its clone: look again soon
};
// Pools in order; the first short one that waits for no clone of its own gets a QEMU.
RefillPlan PlanRefill(const std::vector<std::pair<std::string, PoolLevel>>& pools);

// The spare shape to start one for: the first (in order, with whether a spare of it is ready)
// that has none, and none while `clones_in_flight`.
std::optional<std::string> SpareToStart(
    const std::vector<std::pair<std::string, bool>>& shapes_ready, int clones_in_flight);

}  // namespace ferry::snapshot
