// A program that runs beside a test (a writer that keeps a guest busy, a client on a long-lived
// connection) until the test has seen enough and stops it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace ferry::testing {

class Background {
 public:
  // Starts argv (argv[0] searched in PATH) with stdin from /dev/null and stdout into `out_path`
  // ("/dev/null" to discard it). Stop() ends it with `stop_signal`.
  explicit Background(const std::vector<std::string>& argv,
                      const std::string& out_path = "/dev/null", int stop_signal = SIGTERM);
  ~Background() { Stop(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  bool Running() const;
  // Sends the stop signal and reaps it; nothing when it was stopped already.
  void Stop();
  // What it printed so far, and how many lines that is.
  std::string Output() const;
  size_t Lines() const;

 private:
  pid_t pid_ = -1;
  std::string out_;
  int stop_signal_;
};

}  // namespace ferry::testing
