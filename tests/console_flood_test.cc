// A guest that floods its serial console cannot fill ferryd's state disk: the console log is a
// ring (src/vm/console_ring.h). ferryd checks console.log once a second and, past the cap, keeps
// its last cap bytes as console.log.1 and empties it. So console.log.1 never holds more than the
// cap, and console.log never more than the cap plus what the guest wrote since the check before.
// Meanwhile the VM runs on, its agent answers, and `ferry vm console` shows the newest lines.
//
// The guest is the hostile test agent in console mode (tests/hostile_guest/): a child process
// writes numbered lines of one length to the console as fast as it takes them, so the test can
// tell from the newest line how much the guest has written in all.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <regex>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

#ifndef FERRY_HOSTILE_IMAGE_DIR
#error "FERRY_HOSTILE_IMAGE_DIR must point at the hostile test images"
#endif

namespace ferry::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kCapKib = 64;
constexpr uint64_t kCap = kCapKib << 10;
// ferryd checks the console every second (vm_runtime.cc); a check may come late on a busy
// machine. The guest's output over this window is the slack console.log may hold beyond the cap.
constexpr auto kCheckWindow = std::chrono::seconds(3);
// The flood is watched this long at least, and until the guest wrote kEnough, for the bound to
// mean something: without a ring console.log would hold all of it.
constexpr auto kFloodFor = std::chrono::seconds(20);
constexpr auto kFloodAtMost = std::chrono::seconds(120);
constexpr uint64_t kEnough = 16 * kCap;
const std::regex kFloodLine("console-flood ([0-9]{9}) x+\r?\n");

uint64_t SizeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The number of the newest complete flood line in `text`, -1 if there is none.
long NewestLine(const std::string& text) {
  long newest = -1;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kFloodLine);
       it != std::sregex_iterator(); ++it) {
    newest = std::max(newest, std::stol((*it)[1].str()));
  }
  return newest;
}

// Bytes one flood line takes in the log: the guest writes 100, its tty may add a '\r'.
size_t LineBytes(const std::string& text) {
  std::smatch m;
  return std::regex_search(text, m, kFloodLine) ? static_cast<size_t>(m.length(0)) : 0;
}

struct Sample {
  Clock::time_point at;
  uint64_t log_bytes;      // console.log
  uint64_t rotated_bytes;  // console.log.1
  long newest;             // the newest flood line so far
};

class ConsoleFloodTest : public FerrydFixture {};

TEST_F(ConsoleFloodTest, TheLogStaysInItsRingAndTheVmAnswersWhileTheGuestFloodsItsConsole) {
  StartFerryd(
      {"--image-dir", FERRY_HOSTILE_IMAGE_DIR, "--console-max-kib", std::to_string(kCapKib)});
  CommandResult made = Ferry(
      {"vm", "create", "flood", "--image", "hostile-console", "--memory", "128", "--wait-ready"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string log = FerryJson({"vm", "show", "flood"})["paths"]["console_log"];
  const std::string rotated = log + ".1";

  std::vector<Sample> samples;
  size_t line_bytes = 0;
  long newest = -1;
  int answered = 0, asked = 0;
  auto next_question = Clock::now();
  const auto start = Clock::now();
  auto flooded_enough = [&] {
    return line_bytes != 0 && samples.size() > 1 &&
           static_cast<uint64_t>(samples.back().newest - samples.front().newest) * line_bytes >=
               kEnough;
  };
  while (Clock::now() < start + kFloodAtMost &&
         (Clock::now() < start + kFloodFor || !flooded_enough())) {
    Sample s{Clock::now(), SizeOf(log), SizeOf(rotated), 0};
    // The newest line is in console.log, or in console.log.1 right after a rotation.
    for (const std::string& path : {log, rotated}) {
      const std::string tail = ReadFileTail(path, 8192);
      if (line_bytes == 0) line_bytes = LineBytes(tail);
      newest = std::max(newest, NewestLine(tail));
    }
    s.newest = newest;
    samples.push_back(s);
    // The flooding VM still runs, and its agent still answers, every few seconds.
    if (Clock::now() >= next_question) {
      next_question = Clock::now() + std::chrono::seconds(4);
      ++asked;
      CommandResult shown = Ferry({"vm", "show", "flood", "--json"});
      json vm = json::parse(shown.out, nullptr, false);
      CommandResult random = Ferry({"vm", "random", "flood", "--bytes", "8"});
      if (vm.is_object() && vm.value("state", "") == "running" && vm.contains("guest") &&
          vm["guest"].value("hostname", "") == "console" && random.exit_code == 0 &&
          random.out.size() == 17) {
        ++answered;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(line_bytes == 100 || line_bytes == 101)
      << "no flood line of the expected length in " << log;
  ASSERT_GE(samples.size(), 2u);
  const uint64_t written =
      static_cast<uint64_t>(samples.back().newest - samples.front().newest) * line_bytes;
  std::cout << "console flood: " << (written >> 10) << " KiB in "
            << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count()
            << " s against a cap of " << kCapKib << " KiB\n";
  // Else the bound below would hold without any ring.
  ASSERT_GE(written, kEnough) << "the guest did not flood its console";

  // Each sample against its bound; the worst one is reported.
  size_t checked = 0;
  uint64_t biggest = 0, worst_rotated = 0;
  int64_t worst_excess = INT64_MIN;
  std::string worst;
  for (const Sample& s : samples) {
    worst_rotated = std::max(worst_rotated, s.rotated_bytes);
    // What the guest wrote in the window before this sample.
    const Sample* before = nullptr;
    for (const Sample& b : samples) {
      if (b.at <= s.at - kCheckWindow) before = &b;
    }
    if (before == nullptr) continue;
    const uint64_t bound = kCap + static_cast<uint64_t>(s.newest - before->newest + 1) * line_bytes;
    const int64_t excess = static_cast<int64_t>(s.log_bytes) - static_cast<int64_t>(bound);
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = std::to_string(s.log_bytes) + " bytes in console.log where the cap plus the " +
              std::to_string(kCheckWindow.count()) + " s of output before allow " +
              std::to_string(bound);
    }
    biggest = std::max(biggest, s.log_bytes + s.rotated_bytes);
    ++checked;
  }
  EXPECT_LE(worst_rotated, kCap) << "console.log.1 holds more than the cap";
  EXPECT_LE(worst_excess, 0) << "console.log outgrew its ring: " << worst;
  EXPECT_GT(checked, samples.size() / 2);
  EXPECT_TRUE(std::filesystem::exists(rotated)) << "the log was never rotated";
  std::cout << "console flood: largest console.log + console.log.1 seen: " << (biggest >> 10)
            << " KiB\n";

  EXPECT_EQ(answered, asked) << "the flooding VM stopped answering";
  // `vm console` shows what the guest wrote last: its newest line is no older than the newest
  // one in the file just before, however the ring was rotated meanwhile.
  long before = -1;
  for (const std::string& path : {log, rotated}) {
    before = std::max(before, NewestLine(ReadFileTail(path, 8192)));
  }
  CommandResult console = Ferry({"vm", "console", "flood", "--bytes", "4096"});
  ASSERT_EQ(console.exit_code, 0) << console.err;
  EXPECT_LE(console.out.size(), 4096u);
  EXPECT_GE(NewestLine(console.out), before) << console.out;
  EXPECT_EQ(FerryJson({"vm", "show", "flood"})["state"], "running");
}

}  // namespace
}  // namespace ferry::testing
