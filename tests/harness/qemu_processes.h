// Finding a test's QEMUs from the outside. QEMU gets its files as descriptors, so its command
// line names no path of the test; the files it holds open do.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ferry::testing {

// Live QEMU processes that hold a file under `dir` open (e.g. a test's state or RAM directory).
std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir);

}  // namespace ferry::testing
