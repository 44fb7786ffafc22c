// The shared test bed (testbed/: scratch directories, free ports, the leftover-process net, the
// command runner, Ctrl-C handling, network namespaces), which the integration tests use too,
// under the names bench/ code uses for it.
#pragma once

#include "testbed/command.h"
#include "testbed/free_port.h"
#include "testbed/interrupt.h"
#include "testbed/netns.h"
#include "testbed/processes.h"
#include "testbed/scratch_dir.h"

namespace ferry::bench {

using testbed::CommandLine;
using testbed::FreeLoopbackPort;
using testbed::InNetworkNamespace;
using testbed::InstallInterruptHandlers;
using testbed::Interrupted;
using testbed::KillProcessesUsing;
using testbed::kInterruptCheck;
using testbed::RunTool;
using testbed::ScratchDir;
using testbed::SweepAndRemove;
using testbed::WaitExitUnlessInterrupted;

}  // namespace ferry::bench
