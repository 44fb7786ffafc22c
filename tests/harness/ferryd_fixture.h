// A real ferryd for one integration test: its own state directory, RAM directory and socket,
// driven through the real `ferry` CLI and the API, with the real default guest image.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/command.h"

namespace ferry::testing {

class FerrydFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts ferryd on this test's state directory and waits until its API answers.
  void StartFerryd(const std::vector<std::string>& extra_args = {});
  // SIGKILL, as a crash would; its QEMUs keep running.
  void KillFerryd();
  void StopFerryd();  // SIGTERM and wait

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

  std::string state_dir_;
  std::string ram_dir_;
  std::string socket_;
  pid_t ferryd_pid_ = -1;
  std::vector<std::string> ferryd_args_;
};

// Sends `sig` to a child process, reaps it and sets `pid` to -1; nothing when pid <= 0.
void SignalAndReap(pid_t& pid, int sig);
// `ferry --socket SOCKET ARGS...`, and the same with --json, parsed (a test failure if it fails).
CommandResult FerryAt(const std::string& socket, const std::vector<std::string>& args);
nlohmann::json FerryJsonAt(const std::string& socket, const std::vector<std::string>& args);

// A loopback TCP port that nothing listens on right now.
uint16_t FreePort();
// `redis-cli -p PORT ARGS...` (the real client); returns its stdout without the trailing newline.
CommandResult Redis(uint16_t port, const std::vector<std::string>& args);
bool ProcessAlive(pid_t pid);

}  // namespace ferry::testing
