#include "snapshot/pool_refill.h"

#include <algorithm>

namespace ferry::snapshot {

int Surplus(const PoolLevel& pool) { return std::max(0, pool.ready - pool.size); }

RefillPlan PlanRefill(const std::vector<std::pair<std::string, PoolLevel>>& pools) {
  RefillPlan plan;
  for (const auto& [name, pool] : pools) {
    if (pool.clone_running) {
      plan.clone_running = true;
      continue;
    }
    if (plan.start_for.empty() && pool.ready + pool.starting < pool.size) plan.start_for = name;
  }
  return plan;
}

std::optional<std::string> SpareToStart(
    const std::vector<std::pair<std::string, bool>>& shapes_ready, int clones_in_flight) {
  if (clones_in_flight > 0) return std::nullopt;
  for (const auto& [shape, ready] : shapes_ready) {
    if (!ready) return shape;
  }
  return std::nullopt;
}

}  // namespace ferry::snapshot
