// The QEMU processes of one test, found from outside as a user would find them: by what their
// command lines name (every path of a test's VMs lies under its state or RAM directory). Other
// tests on the machine run QEMUs of their own.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ferry::testing {

// Live (not zombie) processes whose program is a QEMU system emulator (argv[0] is
// qemu-system-* or a path ending in it) and whose command line contains `needle`.
std::vector<pid_t> QemusMentioning(const std::string& needle);

}  // namespace ferry::testing
