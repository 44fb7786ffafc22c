// The one table every entry prints through: medians side by side, their ratio, the goal, and
// then every sample, so a reader can see the spread behind a median.
#pragma once

#include <ostream>
#include <string>

#include "bench/harness/runner.h"

namespace ferry::bench {

void PrintResultTable(const EntryResult& result, std::ostream& out);

// "8123 ms" for long times, "41.7 ms" for short ones.
std::string FormatMillis(double ms);

}  // namespace ferry::bench
