// The QEMU processes of one test, found from outside as a user would find them. QEMU gets its
// files as descriptors, so its command line names no path of the test; the files it holds open
// do (every file of a test's VMs lies under its state or RAM directory). Other tests on the
// machine run QEMUs of their own.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ferry::testing {

// Live QEMU processes (argv[0] is qemu-system-*) that hold a file under `dir` open.
std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir);
// The same, polled until it finds one or `deadline` passes: a QEMU spawned a moment ago (by a
// ferryd that then died at a fault point) has QEMU's argv[0] only once its exec is done.
std::vector<pid_t> WaitForQemusHoldingFilesUnder(
    const std::string& dir, std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace ferry::testing
