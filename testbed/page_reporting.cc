#include "testbed/page_reporting.h"

#include <deque>
#include <fstream>
#include <thread>
#include <utility>

namespace ferry::testbed {

namespace {
constexpr const char* kReportedKib = "/sys/module/page_reporting/parameters/reported_kib";
}  // namespace

std::optional<uint64_t> ReportedFreeKib() {
  std::ifstream in(kReportedKib);
  uint64_t kib = 0;
  if (!(in >> kib)) return std::nullopt;
  return kib;
}

bool WaitForFreePageReportingToSettle(std::chrono::milliseconds window, uint64_t quiet_mib,
                                      std::chrono::seconds limit) {
  using Clock = std::chrono::steady_clock;
  if (!ReportedFreeKib()) return true;
  const auto start = Clock::now();
  std::deque<std::pair<Clock::time_point, uint64_t>> seen;  // the samples of the last window
  while (Clock::now() - start < limit) {
    const auto now = Clock::now();
    auto kib = ReportedFreeKib();
    if (!kib) return true;
    seen.emplace_back(now, *kib);
    while (now - seen.front().first > window) seen.pop_front();
    const bool full_window = now - start >= window;
    if (full_window && seen.back().second - seen.front().second < quiet_mib * 1024) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace ferry::testbed
