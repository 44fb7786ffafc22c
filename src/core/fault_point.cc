#include "core/fault_point.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

namespace ferry {

void FaultPoint(const char* name) {
  static const char* armed = std::getenv("FERRY_FAULT_POINT");
  if (armed == nullptr || std::strcmp(armed, name) != 0) return;
  spdlog::warn("fault point {} reached: this process kills itself (FERRY_FAULT_POINT)", name);
  spdlog::default_logger()->flush();
  ::raise(SIGKILL);
}

}  // namespace ferry
