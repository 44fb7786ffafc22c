// QEMU's own view of a move's memory phase, read the same way on every migration side: the
// figures of the source's completed query-migrate reply, and the migration settings it ran
// with. Diagnostics for the table (why one side's precopy took longer), never goals.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/drivers/migrating_guest.h"
#include "bench/harness/runner.h"

namespace ferry::bench {

// One figure taken from query-migrate: its measurement key (after the cell's prefix), the
// table row's wording, and where it is in the reply ("ram" members are "ram.NAME").
struct MemoryPhaseFigure {
  const char* key;
  const char* row;
  const char* path;
};

// setup-time, ram mbps, dirty-sync-count, dirty-pages-rate, normal and duplicate pages, the
// precopy's and the downtime's bytes, cpu-throttle-percentage (auto-converge).
const std::vector<MemoryPhaseFigure>& MemoryPhaseFigures();

// Adds every figure the reply has as `prefix` + key (absent ones are left out).
void AddMemoryPhaseMeasurements(const MoveFigures& f, const std::string& prefix, Measurements& m);

// The settings (query-migrate-parameters members, capabilities by name) whose values differ
// between two sides' `qemu_settings`, as "name: A vs B" joined by "; " ("" when none do).
// tls-* parameters and announce-* timings are left out: they differ by design or not at all.
std::string SettingsDifference(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace ferry::bench
