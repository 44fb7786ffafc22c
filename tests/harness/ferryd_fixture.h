// A real ferryd for one integration test: its own state directory, RAM directory and socket,
// driven through the real `ferry` CLI and the API, with the real default guest image.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/command.h"
#include "testbed/processes.h"

namespace ferry::testing {

// The build tree the tests run from: its ferry, ferryd and images/.
const std::string& BuildDir();

class FerrydFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts ferryd on this test's state directory and waits until its API answers. With a
  // `fault_point` (src/core/fault_point.h) ferryd kills itself when it reaches it.
  void StartFerryd(const std::vector<std::string>& extra_args = {},
                   const std::string& fault_point = "");
  // SIGKILL, as a crash would; its QEMUs keep running.
  void KillFerryd();
  void StopFerryd();  // SIGTERM and wait
  // Waits (60 s at most) for ferryd to kill itself (SIGKILL) at the fault point it was started
  // with, and reaps it; a gtest failure if it did not.
  void ReapFerrydKilledAtItsFaultPoint();

  // `ferry ARGS...` against this test's ferryd.
  CommandResult Ferry(const std::vector<std::string>& args);
  // `ferry ARGS... --json`, parsed; fails the test if the command fails.
  nlohmann::json FerryJson(const std::vector<std::string>& args);
  // Creates a default redis VM forwarding a fresh host port to 6379; returns that port.
  uint16_t CreateRedisVm(const std::string& name, const std::string& memory = "256");
  // Polls `vm show` until the VM is in `state` or the deadline passes; returns the last show.
  nlohmann::json WaitForState(const std::string& name, const std::string& state,
                              std::chrono::seconds deadline = std::chrono::seconds(60));
  std::vector<std::string> VmNames();
  // QEMUs holding files under `dir` that are not a spare QEMU waiting for a plain clone (as
  // `host show` lists them): what a test counts as a VM's, or a leftover's.
  std::vector<pid_t> QemusUnderExceptSpares(const std::string& dir);

  std::string state_dir_;
  std::string ram_dir_;
  std::string socket_;
  pid_t ferryd_pid_ = -1;
};

// A test's ferryd command line (testbed/ferryd_process.h): the build's ferryd on these
// directories and socket, in `netns` unless "", with a ready timeout that TCG needs, then
// `extra_args`, and `--qemu $FERRY_TEST_QEMU` when that is set and extra_args name no --qemu.
std::vector<std::string> TestFerrydCommandLine(const std::string& state_dir,
                                               const std::string& ram_dir,
                                               const std::string& socket, const std::string& netns,
                                               const std::vector<std::string>& extra_args);
// Starts a ferryd (testbed::SpawnFerryd): `argv` (argv[0] searched in PATH, so `ip netns exec NS
// ferryd ...` works too) with stdout and stderr appended to `log`, and
// FERRY_FAULT_POINT=`fault_point` in its environment when one is given. Returns its pid, a child
// of this process; -1 (and a test failure) if it could not start.
pid_t SpawnFerryd(const std::vector<std::string>& argv, const std::string& log,
                  const std::string& fault_point = "");
// Waits (20 s at most) until the ferryd `pid` answers on `socket`. A failure names `who` and
// `log`; a ferryd that exited meanwhile is reaped and `pid` set to -1.
::testing::AssertionResult WaitForFerrydApi(pid_t& pid, const std::string& socket,
                                            const std::string& who, const std::string& log);

// Sends `sig` to a child process, reaps it and sets `pid` to -1; nothing when pid <= 0.
void SignalAndReap(pid_t& pid, int sig);
// `ferry --socket SOCKET ARGS...`, and the same with --json, parsed (a test failure if it fails).
CommandResult FerryAt(const std::string& socket, const std::vector<std::string>& args);
nlohmann::json FerryJsonAt(const std::string& socket, const std::vector<std::string>& args);
// The names of the VMs the ferryd on `socket` has (none if it does not answer).
std::vector<std::string> VmNamesAt(const std::string& socket);

// A loopback TCP port that nothing listens on right now (testbed/free_port.h; a test failure
// if there is none).
uint16_t FreePort();
// `redis-cli -p PORT ARGS...` (the real client); returns its stdout without the trailing newline.
CommandResult Redis(uint16_t port, const std::vector<std::string>& args);
// The test bed's look at processes from outside (testbed/processes.h).
using testbed::ProcessAlive;
using testbed::QemusHoldingFilesUnder;
using testbed::WaitForQemusHoldingFilesUnder;

}  // namespace ferry::testing
