// Milliseconds since a steady-clock instant: how long a step took, as operations report it.
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

inline int64_t MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t)
      .count();
}

}  // namespace ferry
