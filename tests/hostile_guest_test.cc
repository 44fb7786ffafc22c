// A hostile guest cannot take ferryd down, touch another VM, or write to the user's terminal.
//
// Each test boots a normal redis VM and one VM of a hostile-* image (tests/hostile_guest/: an
// agent that speaks ferry-guest's protocol with wrong types, deep nesting, floods, guessed ids,
// silence, or escape sequences), then drives, through the real CLI, every operation that talks
// to the guest. After each case: ferryd's process is alive and its API answers, and the redis
// VM still holds its key. The hostile VM's operations either fail with one line naming the VM or
// succeed harmlessly; nothing the CLI prints carries a raw control byte from the guest.
//
// A case that kills ferryd ends its test (the cases after it are counted as not reached); the
// suite prints "hostile-guest cases ferryd survived: N of M" at the end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "harness/ferryd_fixture.h"

#ifndef FERRY_HOSTILE_IMAGE_DIR
#error "FERRY_HOSTILE_IMAGE_DIR must point at the hostile test images"
#endif

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kHostileImages = FERRY_HOSTILE_IMAGE_DIR;
constexpr const char* kHostile = "hostile-vm";

// The offset and value of the first byte a terminal would act on: C0 controls but newline and
// tab (and carriage return where `allow_cr`: the guest kernel's serial console ends its lines
// with "\r\n"), DEL, and the C1 controls as UTF-8 (0xc2 0x80..0x9f). Empty when there is none.
std::string FirstControlByte(const std::string& text, bool allow_cr = false) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool c1 = c == 0xc2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9f;
    if ((c < 0x20 && c != '\n' && c != '\t' && !(allow_cr && c == '\r')) || c == 0x7f || c1) {
      char what[64];
      std::snprintf(what, sizeof what, "byte 0x%02x at offset %zu", c, i);
      return what;
    }
  }
  return "";
}

class HostileGuestTest : public FerrydFixture {
 protected:
  static inline int cases_ = 0;
  static inline int survived_ = 0;
  static inline std::vector<std::string> killers_;

  static void TearDownTestSuite() {
    std::printf("hostile-guest cases ferryd survived: %d of %d\n", survived_, cases_);
    for (const auto& k : killers_) std::printf("  ferryd died on: %s\n", k.c_str());
  }

  void SetUp() override {
    FerrydFixture::SetUp();
    ASSERT_TRUE(std::filesystem::exists(std::string(kHostileImages) + "/hostile-types/image.json"))
        << "the hostile test images are not built; build target image-hostile";
    StartFerryd({"--image-dir", kHostileImages});
    normal_port_ = CreateRedisVm("normal");
    ASSERT_EQ(Redis(normal_port_, {"set", "survivor", "still-here"}).out, "OK");
  }

  // One hostile case: runs `step` (which drives the CLI and checks the hostile VM's outcome),
  // then checks that ferryd survived and the normal VM is untouched. Cases after ferryd died
  // are counted but not run.
  void Case(const std::string& what, const std::function<void()>& step) {
    SCOPED_TRACE("case: " + what);
    ++cases_;
    if (ferryd_pid_ <= 0) {
      ADD_FAILURE() << "not reached: ferryd died in an earlier case";
      return;
    }
    step();
    int status = 0;
    if (::waitpid(ferryd_pid_, &status, WNOHANG) == ferryd_pid_) {
      ferryd_pid_ = -1;
      killers_.push_back(::testing::UnitTest::GetInstance()->current_test_info()->name() +
                         std::string(": ") + what + " (" + DescribeExit(status) + ")");
      ADD_FAILURE() << "ferryd died (" << DescribeExit(status) << "); its log ends:\n" << LogTail();
      return;
    }
    CommandResult host = Ferry({"host", "show", "--json"});
    EXPECT_EQ(host.exit_code, 0) << "ferryd's API does not answer: " << host.err;
    EXPECT_EQ(Redis(normal_port_, {"get", "survivor"}).out, "still-here")
        << "the normal VM lost its data";
    if (host.exit_code == 0) ++survived_;
  }

  // `ferry ARGS` that must fail with one line naming `vm`, and print no control byte.
  void ExpectFailsNaming(const std::vector<std::string>& args, const std::string& vm) {
    CommandResult r = Ferry(args);
    EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_THAT(ErrorText(r), StartsWith("ferry: "));
    EXPECT_THAT(r.err, HasSubstr(vm));
    EXPECT_EQ(ErrorLines(r), 1) << "not one line: " << r.err;
    ExpectPrintable(r);
  }

  // `ferry ARGS` that must succeed (exit 0) and print no control byte; returns it.
  CommandResult ExpectSucceeds(const std::vector<std::string>& args) {
    CommandResult r = Ferry(args);
    EXPECT_EQ(r.exit_code, 0) << "stdout: " << r.out << "\nstderr: " << r.err;
    ExpectPrintable(r);
    return r;
  }

  static void ExpectPrintable(const CommandResult& r, bool allow_cr = false) {
    EXPECT_EQ(FirstControlByte(r.out, allow_cr), "") << "in stdout: " << r.out;
    EXPECT_EQ(FirstControlByte(r.err), "") << "in stderr: " << r.err;
  }

  void CreateHostile(const std::string& mode) {
    ExpectSucceeds({"vm", "create", kHostile, "--image", "hostile-" + mode, "--memory", "128",
                    "--wait-ready"});
  }

  // Stopping always ends the VM: gracefully when the guest powers off, forced when it does not.
  void StopHostile() {
    ExpectSucceeds({"vm", "stop", kHostile});
    EXPECT_EQ(WaitForState(kHostile, "stopped").value("state", ""), "stopped");
  }

  static std::string DescribeExit(int status) {
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }

  std::string LogTail() {
    std::ifstream in(state_dir_ + "/ferryd.log");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line.substr(0, 300));
      if (lines.size() > 15) lines.erase(lines.begin());
    }
    std::string out;
    for (const auto& l : lines) out += "  " + l + "\n";
    return out;
  }

  uint16_t normal_port_ = 0;
};

// Right members, wrong types, in every reply: ping's is read by ferryd on its own, while the VM
// boots ("ready":"x"); the others answer vm show, vm random, clone and stop.
TEST_F(HostileGuestTest, WrongTypes) {
  Case("ping reply {\"ready\":\"x\",\"proto\":\"3\"} while the VM boots",
       [&] { CreateHostile("types"); });
  Case("identity reply with an array hostname, numeric machine_id, string macs", [&] {
    ExpectSucceeds({"vm", "show", kHostile});
    ExpectSucceeds({"vm", "show", kHostile, "--json"});
  });
  Case("urandom reply {\"ok\":\"yes\"}", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("urandom reply {\"ok\":true,\"hex\":5}", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("urandom reply {\"ok\":false,\"error\":{...}}", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("urandom reply that is an array", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("urandom reply with \"id\":\"N\"", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("snapshot of the hostile VM", [&] {
    ExpectSucceeds({"snapshot", "create", kHostile, "--name", "hostile-snap"});
  });
  Case("reset_identity reply {\"total_ms\":\"fast\",\"steps_ms\":[1],\"identity\":\"x\"}", [&] {
    // The clone's identity reset was not confirmed: it must not serve.
    ExpectFailsNaming({"clone", "hostile-snap", "--name", "hostile-clone"}, "hostile-clone");
  });
  Case("shutdown reply with junk members", [&] { StopHostile(); });
}

// ~500000 nested arrays inside the 1 MiB line limit, in each place a guest can put them.
TEST_F(HostileGuestTest, DeepNesting) {
  Case("ready and ping as ferry-guest", [&] { CreateHostile("deep"); });
  Case("identity reply with a deep member", [&] {
    CommandResult r = ExpectSucceeds({"vm", "show", kHostile});
    EXPECT_THAT(r.out, HasSubstr("guest")) << "vm show says nothing of the guest";
  });
  // Each of these is followed by a good reply: the junk before it is only ignored.
  Case("deep unsolicited event", [&] {
    ExpectSucceeds({"vm", "random", kHostile, "--bytes", "8"});
  });
  Case("deep message that is neither reply nor event", [&] {
    ExpectSucceeds({"vm", "random", kHostile, "--bytes", "8"});
  });
  Case("deep array as a reply's id", [&] {
    ExpectSucceeds({"vm", "random", kHostile, "--bytes", "8"});
  });
  Case("deep bare array line", [&] { ExpectSucceeds({"vm", "random", kHostile, "--bytes", "8"}); });
  Case("snapshot of the hostile VM", [&] {
    ExpectSucceeds({"snapshot", "create", kHostile, "--name", "deep-snap"});
  });
  Case("reset_identity reply with deep steps_ms", [&] {
    CommandResult r = Ferry({"clone", "deep-snap", "--name", "deep-clone"});
    ExpectPrintable(r);
    if (r.exit_code != 0) {
      EXPECT_THAT(r.err, HasSubstr("deep-clone"));
    }
  });
  Case("shutdown", [&] { StopHostile(); });
}

// About 11 MiB of noise before one reply: lines just under the limit, over it, 4 MiB without
// a newline, 20000 events and 20000 replies to ids ferryd never sent (or sent long ago).
TEST_F(HostileGuestTest, Flood) {
  Case("ready and ping as ferry-guest", [&] { CreateHostile("flood"); });
  Case("flood before the urandom reply", [&] {
    // The reply comes after the flood: under emulation that may be after ferryd's timeout, so
    // the first call may time out (naming the VM); a later one gets its answer once the noise
    // is through. Nothing here measures time: the deadline only bounds a hang.
    CommandResult first = Ferry({"vm", "random", kHostile, "--bytes", "8"});
    ExpectPrintable(first);
    if (first.exit_code != 0) {
      EXPECT_THAT(first.err, HasSubstr(kHostile));
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    CommandResult r = first;
    while (r.exit_code != 0 && std::chrono::steady_clock::now() < until && ferryd_pid_ > 0 &&
           ProcessAlive(ferryd_pid_)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      r = Ferry({"vm", "random", kHostile, "--bytes", "8"});
    }
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), 17u) << r.out;  // 16 hex digits and a newline
  });
  Case("identity after the flood", [&] {
    CommandResult r = ExpectSucceeds({"vm", "show", kHostile});
    EXPECT_THAT(r.out, HasSubstr("flood")) << "the guest's hostname is not shown";
  });
  Case("shutdown", [&] { StopHostile(); });
}

// Replies to ids the guest guesses, and silence where the real reply belongs.
TEST_F(HostileGuestTest, GuessedIdsAndSilence) {
  Case("ready and ping as ferry-guest", [&] { CreateHostile("ids"); });
  Case("urandom answered only under ids +1, -1, 2^64-1, -1, 1e300, N.5, \"N\", null", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("identity never answered", [&] {
    ExpectSucceeds({"vm", "show", kHostile});
    json vm = FerryJson({"vm", "show", kHostile});
    EXPECT_TRUE(vm.contains("guest") && vm["guest"].contains("error")) << vm.dump();
  });
  Case("urandom again, the previous ids now past", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("shutdown never answered", [&] { StopHostile(); });
}

// Escape sequences and control bytes in the hostname, interface names, addresses, the guest's
// error text and its serial console: none reaches the terminal raw.
TEST_F(HostileGuestTest, EscapeSequences) {
  Case("ready and ping as ferry-guest", [&] { CreateHostile("escape"); });
  Case("hostname, boot id, kernel, interface and address with escapes", [&] {
    ExpectSucceeds({"vm", "show", kHostile});
    // JSON output: control bytes must be \u-escaped (DEL is not a JSON control character).
    CommandResult r = Ferry({"vm", "show", kHostile, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string without_del = r.out;
    std::erase(without_del, '\x7f');
    EXPECT_EQ(FirstControlByte(without_del), "") << "in stdout: " << r.out;
    EXPECT_TRUE(json::accept(r.out)) << r.out;
  });
  Case("guest error text with escapes", [&] {
    ExpectFailsNaming({"vm", "random", kHostile}, kHostile);
  });
  Case("serial console with escapes", [&] {
    CommandResult r = Ferry({"vm", "console", kHostile});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ExpectPrintable(r, /*allow_cr=*/true);
    EXPECT_THAT(r.out, HasSubstr("hostile console")) << "the console log was not shown";
  });
  Case("shutdown", [&] { StopHostile(); });
}

}  // namespace
}  // namespace ferry::testing
