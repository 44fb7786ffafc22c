// The processes a test bed started and must not leave behind, found from outside as a user would
// find them. QEMU gets its files as descriptors, so its command line names no path of the test
// or benchmark; the files it holds open do (every file of their VMs lies under a state or RAM
// directory of their own). Other tests and benchmarks on the machine run QEMUs of their own.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "testbed/scratch_dir.h"

namespace ferry::testbed {

// SIGKILLs every process whose command line contains `path` or that holds a file under `path`
// open, and waits (up to 5 s each) for them to go. `path` must be a directory unique to this
// run (a ScratchDir): this is the safety net for QEMUs that outlived their ferryd or the
// benchmark's own, whose command lines name their files by descriptor (/proc/self/fd/N).
// Returns how many it killed.
int KillProcessesUsing(const std::string& path);

// The end of a run's directories: KillProcessesUsing each (those that are set), then removes
// them all.
void SweepAndRemove(const std::vector<std::optional<ScratchDir>*>& dirs);

// Live QEMU processes (argv[0] is qemu-system-*) that hold a file under `dir` open.
std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir);
// The same, polled until it finds one or `deadline` passes: a QEMU spawned a moment ago (by a
// ferryd that then died at a fault point) has QEMU's argv[0] only once its exec is done.
std::vector<pid_t> WaitForQemusHoldingFilesUnder(
    const std::string& dir, std::chrono::milliseconds deadline = std::chrono::seconds(10));

// Whether `pid` runs: false for a zombie, which has exited and only waits for its parent (init,
// for a re-adopted QEMU) to reap it.
bool ProcessAlive(pid_t pid);

}  // namespace ferry::testbed
