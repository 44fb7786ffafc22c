#include "core/fault_point.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace ferry {

namespace {

const std::string& Armed() {
  static const std::string armed = [] {
    const char* v = std::getenv("FERRY_FAULT_POINT");
    return std::string(v ? v : "");
  }();
  return armed;
}

}  // namespace

bool FaultPointFails(const char* name) {
  const std::string& armed = Armed();
  if (armed.empty() || armed != std::string(name) + ":fail") return false;
  spdlog::warn("fault point {} reached: failing this step (FERRY_FAULT_POINT)", name);
  return true;
}

void FaultPoint(const char* name) {
  const std::string& armed = Armed();
  if (armed.empty()) return;
  const size_t colon = armed.find(':');
  if (armed.substr(0, colon) != name) return;
  if (colon != std::string::npos && armed.substr(colon + 1) == "slow") {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return;
  }
  if (colon != std::string::npos) return;  // ":fail": FaultPointFails
  spdlog::warn("fault point {} reached: this process kills itself (FERRY_FAULT_POINT)", name);
  spdlog::default_logger()->flush();
  ::raise(SIGKILL);
}

}  // namespace ferry
