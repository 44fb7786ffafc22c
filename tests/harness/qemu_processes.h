// The QEMU processes of one test, found from outside as a user would find them: by what their
// command lines name (every path of a test's VMs lies under its state or RAM directory). Other
// tests on the machine run QEMUs of their own.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ferry::testing {

// Live (not zombie) processes whose program is a QEMU system emulator (argv[0] is
// qemu-system-* or a path ending in it) and whose command line contains `needle`.
std::vector<pid_t> QemusMentioning(const std::string& needle);
// The same, polled until it finds one or `deadline` passes: a QEMU spawned a moment ago (by a
// ferryd that then died at a fault point) shows its command line only once its exec is done.
std::vector<pid_t> WaitForQemusMentioning(
    const std::string& needle, std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace ferry::testing
