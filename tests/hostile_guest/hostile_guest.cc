// hostile-guest: a test-only guest agent. It runs as PID 1 of the "hostile-*" test images
// (exec'd by their /init once the virtio modules are loaded) and speaks on ferry-guest's port,
// org.ferry.guest, but answers as a compromised guest could. What it does is chosen by
// ferry.hostile=MODE on the kernel command line (each hostile image sets one):
//
//   types   the right members with the wrong types: "ready":"x", "ok":"yes", "id":"7", arrays
//           where objects belong, numbers where strings belong, in every op's reply
//   deep    ~500000 nested '[' inside the 1 MiB line limit: in a reply, an event, a message that
//           is neither, a reply's id, and a bare array
//   flood   megabyte lines, lines over the limit, tens of thousands of unsolicited events and
//           replies to ids never sent, before the real reply
//   ids     replies to ids it guesses (id+1, id-1, 2^64-1, -1, 1e300, "7") and never the real
//           one; identity and shutdown are never answered at all
//   escape  terminal escape sequences and control bytes in its hostname, interfaces, error
//           texts and serial console output
//   console its serial console flooded without pause by a child process, with numbered lines of
//           one length ("console-flood 000000042 xxx...", kFloodLineBytes with the newline),
//           while the agent answers every op correctly
//
// In every mode it sends a well-formed ready event just before its first reply (in types mode,
// after the first few pings), so ferryd takes the VM as booted and the later ops reach the
// hostile answers. It is never part of a user image;
// tests/hostile_guest_test.cc drives ferryd against it.
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "guest/console.h"
#include "guest/event_signals.h"
#include "guest/host_channel.h"

namespace ferry::hostile {
namespace {

using guest::BlockedSignalFd;
using guest::ConsoleWrite;
using guest::HostChannel;

// ferryd's limit for one line from the guest (qemu::GuestChannel::kMaxLineBytes).
constexpr std::size_t kHostLineLimit = std::size_t{1} << 20;
// '[' and ']' pairs in a deep value: 1,000,000 bytes, inside the line limit with room for the
// members around it.
constexpr std::size_t kDeepLevels = 500000;
// Fresh pings answered only with "ready":"x" before the ready event, in types mode, and the
// quiet time before a ping that tells it from the burst of stale ones queued during boot.
constexpr int kIllTypedPings = 3;
constexpr auto kQuietBeforeFreshPing = std::chrono::milliseconds(250);
constexpr std::string_view kReadyEvent = R"({"event":"ready","proto":3,"services":[],"boot_ms":1})";
// An xterm title change, a screen clear, a colour, a backspace, DEL and the 8-bit CSI (C1 0x9b
// as UTF-8): what a guest would print to take over the terminal of whoever reads its strings.
constexpr std::string_view kEscapes =
    "\x1b]0;pwned\x07\x1b[2J\x1b[31m\b\x7f\xc2\x9b"
    "1m";
// The same, as a JSON string body.
constexpr std::string_view kEscapesJson =
    R"(\u001b]0;pwned\u0007\u001b[2J\u001b[31m\b\u007f\u009b1m)";

enum class Mode { kTypes, kDeep, kFlood, kIds, kEscape, kConsole };

// One line of the console flood, newline included (the guest's tty makes it "\r\n" on the
// serial line: one byte more on the host).
constexpr std::size_t kFloodLineBytes = 100;

std::optional<Mode> ModeFromCmdline() {
  std::ifstream in("/proc/cmdline");
  std::string word;
  while (in >> word) {
    if (word.rfind("ferry.hostile=", 0) != 0) continue;
    std::string mode = word.substr(std::strlen("ferry.hostile="));
    if (mode == "types") return Mode::kTypes;
    if (mode == "deep") return Mode::kDeep;
    if (mode == "flood") return Mode::kFlood;
    if (mode == "ids") return Mode::kIds;
    if (mode == "escape") return Mode::kEscape;
    if (mode == "console") return Mode::kConsole;
  }
  return std::nullopt;
}

std::string Deep(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

std::string Reply(uint64_t id, std::string_view members) {
  std::string line = R"({"id":)" + std::to_string(id) + R"(,"ok":true)";
  if (!members.empty()) line.append(",").append(members);
  return line + "}";
}

std::string RandomHex(std::size_t bytes) {
  unsigned char buf[64] = {};
  if (getrandom(buf, bytes, 0) < 0) std::memset(buf, 0x5a, bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[buf[i] >> 4]);
    out.push_back(kHex[buf[i] & 15]);
  }
  return out;
}

// A well-formed identity reply body, with `hostname` (already JSON-escaped) as the hostname.
std::string IdentityMembers(std::string_view hostname) {
  return std::string(R"("hostname":")") + std::string(hostname) +
         R"(","machine_id":"0123456789abcdef0123456789abcdef",)"
         R"("boot_id":"01234567-89ab-cdef-0123-456789abcdef",)"
         R"("macs":[{"iface":"eth0","mac":"52:54:00:12:34:56","ipv4":[]}],)"
         R"("kernel":"6.1.0","ssh_host_keys":[],"clock_unix_ns":1700000000000000000)";
}

[[noreturn]] void PowerOff(HostChannel& channel) {
  channel.Flush(1000);
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

class Agent {
 public:
  Agent(Mode mode, HostChannel& channel) : mode_(mode), channel_(channel) {}

  void OnLine(const std::string& line) {
    nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!request.is_object()) return;
    auto id_it = request.find("id");
    auto op_it = request.find("op");
    if (id_it == request.end() || !id_it->is_number_unsigned() || op_it == request.end() ||
        !op_it->is_string()) {
      return;
    }
    const uint64_t id = id_it->get<uint64_t>();
    const std::string op = op_it->get<std::string>();
    const int seen = count_[op]++;
    // ferryd pings every 500 ms until the guest is ready and drops a reply that comes later
    // than that. The pings sent while the guest booted arrive in one burst, and their replies
    // are all late; a ping that arrives after a quiet spell is a fresh one, whose reply ferryd
    // waits for. In types mode the ready event waits for a few fresh ill-typed ping replies.
    const auto now = std::chrono::steady_clock::now();
    if (op == "ping" && now - last_ping_ >= kQuietBeforeFreshPing) ++fresh_pings_;
    if (op == "ping") last_ping_ = now;
    const bool hold_ready = mode_ == Mode::kTypes && op == "ping" && fresh_pings_ <= kIllTypedPings;
    if (!ready_sent_ && !hold_ready) {
      ready_sent_ = true;
      Send(std::string(kReadyEvent));
    }
    switch (mode_) {
      case Mode::kTypes:
        return Types(id, op, seen);
      case Mode::kDeep:
        return DeepMode(id, op, seen);
      case Mode::kFlood:
        return Flood(id, op, seen);
      case Mode::kIds:
        return Ids(id, op);
      case Mode::kEscape:
        return Escape(id, op);
      case Mode::kConsole:
        return Plain(id, op, "console");
    }
  }

 private:
  void Send(std::string line) { channel_.Send(std::move(line)); }

  // Right members, wrong types. ping's reply is the one ferryd reads on its own (to learn that
  // the guest is ready), without any user asking.
  void Types(uint64_t id, const std::string& op, int seen) {
    const std::string n = std::to_string(id);
    if (op == "ping") {
      return Send(Reply(id, R"("proto":"3","ready":"x","uptime_ms":[1])"));
    }
    if (op == "identity") {
      return Send(Reply(id, R"("hostname":["x"],"machine_id":7,"boot_id":{"a":1},"macs":"eth0",)"
                            R"("kernel":null,"ssh_host_keys":5,"clock_unix_ns":"now")"));
    }
    if (op == "urandom") {
      switch (seen % 5) {
        case 0:
          return Send(R"({"id":)" + n + R"(,"ok":"yes","hex":5})");
        case 1:
          return Send(Reply(id, R"("hex":5)"));
        case 2:
          return Send(R"({"id":)" + n + R"(,"ok":false,"error":{"why":[1]}})");
        case 3:
          return Send("[" + n + R"(,true,"00"])");  // never an object
        default:
          return Send(R"({"id":")" + n + R"(","ok":true,"hex":"00"})");  // id as string
      }
    }
    if (op == "reset_identity" || op == "finish_identity") {
      return Send(Reply(id, R"("identity":"x","steps_ms":[1],"total_ms":"fast")"));
    }
    if (op == "shutdown") {
      Send(Reply(id, R"("bye":[1,{"x":null}])"));
      PowerOff(channel_);
    }
    Send(Reply(id, R"("unexpected":[[]])"));
  }

  // Deep nesting, one placement per request so that each is its own case in the test.
  void DeepMode(uint64_t id, const std::string& op, int seen) {
    const std::string deep = Deep(kDeepLevels);
    if (op == "ping") return Send(Reply(id, R"("proto":3,"ready":true,"uptime_ms":1)"));
    if (op == "identity") return Send(Reply(id, IdentityMembers("deep") + R"(,"deep":)" + deep));
    if (op == "urandom") {
      switch (seen % 4) {
        case 0:
          Send(R"({"event":"noise","deep":)" + deep + "}");
          break;  // an event
        case 1:
          Send(R"({"noise":)" + deep + "}");
          break;  // neither reply nor event
        case 2:
          Send(R"({"id":)" + deep + R"(,"ok":true})");
          break;  // the id itself
        default:
          Send(deep);
          break;  // not an object at all
      }
      return Send(Reply(id, R"("hex":")" + RandomHex(8) + R"(")"));
    }
    if (op == "reset_identity" || op == "finish_identity") {
      return Send(Reply(id, R"("identity":{"hostname":"deep"},"steps_ms":)" + deep));
    }
    if (op == "shutdown") {
      Send(Reply(id, ""));
      PowerOff(channel_);
    }
    Send(Reply(id, ""));
  }

  // The first urandom is answered after ~11 MiB of noise; everything else promptly.
  void Flood(uint64_t id, const std::string& op, int seen) {
    if (op == "urandom" && seen == 0) {
      const std::string pad(kHostLineLimit - 64, 'a');
      for (int i = 0; i < 4; ++i) Send(R"({"event":"noise","pad":")" + pad + R"("})");
      for (int i = 0; i < 2; ++i) Send(std::string(kHostLineLimit + 4096, 'x'));
      Send(std::string(4 * kHostLineLimit, '{'));
      for (int i = 0; i < 20000; ++i) {
        Send(R"({"event":"noise","n":)" + std::to_string(i) + "}");
        // Old ids (ferryd's ids grow), ids far away, and ids it cannot have sent.
        Send(Reply(id - 1 - static_cast<uint64_t>(i), R"("hex":"00")"));
        if (i % 100 == 0) Send(Reply(UINT64_MAX - static_cast<uint64_t>(i), ""));
      }
    }
    Plain(id, op, "flood");
  }

  // Answers ids it was not asked about; the caller's own reply never comes.
  void Ids(uint64_t id, const std::string& op) {
    if (op == "ping") return Send(Reply(id, R"("proto":3,"ready":true,"uptime_ms":1)"));
    if (op != "urandom") return;  // identity, shutdown, identity resets: silence
    const std::string n = std::to_string(id);
    Send(Reply(id + 1, R"("hex":"00")"));
    Send(Reply(id - 1, R"("hex":"00")"));
    Send(Reply(UINT64_MAX, R"("hex":"00")"));
    Send(R"({"id":-1,"ok":true,"hex":"00"})");
    Send(R"({"id":1e300,"ok":true,"hex":"00"})");
    Send(R"({"id":)" + n + R"(.5,"ok":true,"hex":"00"})");
    Send(R"({"id":")" + n + R"(","ok":true,"hex":"00"})");
    Send(R"({"id":null,"ok":true,"hex":"00"})");
  }

  // Every op answered as ferry-guest would, with `hostname` as the hostname.
  void Plain(uint64_t id, const std::string& op, std::string_view hostname) {
    if (op == "ping") return Send(Reply(id, R"("proto":3,"ready":true,"uptime_ms":1)"));
    if (op == "identity") return Send(Reply(id, IdentityMembers(hostname)));
    if (op == "urandom") return Send(Reply(id, R"("hex":")" + RandomHex(8) + R"(")"));
    if (op == "shutdown") {
      Send(Reply(id, ""));
      PowerOff(channel_);
    }
    Send(Reply(id, ""));
  }

  // Control bytes everywhere a guest string can reach a terminal.
  void Escape(uint64_t id, const std::string& op) {
    ConsoleWrite(std::string("hostile console ") + std::string(kEscapes));
    const std::string esc(kEscapesJson);
    if (op == "ping") return Send(Reply(id, R"("proto":3,"ready":true,"uptime_ms":1)"));
    if (op == "identity") {
      return Send(Reply(id, R"("hostname":"evil)" + esc +
                                R"(","machine_id":"0123456789abcdef0123456789abcdef",)"
                                R"("boot_id":")" +
                                esc + R"(","kernel":"6.1)" + esc +
                                R"(",)"
                                R"("macs":[{"iface":"eth0)" +
                                esc +
                                R"(","mac":"52:54:00:12:34:56",)"
                                R"("ipv4":["10.0.2.15/24)" +
                                esc + R"("]}],"ssh_host_keys":[],"clock_unix_ns":1)"));
    }
    if (op == "shutdown") {
      Send(Reply(id, ""));
      PowerOff(channel_);
    }
    Send(R"({"id":)" + std::to_string(id) + R"(,"ok":false,"error":"no entropy)" + esc + R"("})");
  }

  Mode mode_;
  HostChannel& channel_;
  bool ready_sent_ = false;
  int fresh_pings_ = 0;
  std::chrono::steady_clock::time_point last_ping_{};
  std::map<std::string, int> count_;
};

// Forks a child that writes numbered lines to the serial console for as long as the guest runs,
// each in one write() and as fast as the console takes them.
void FloodConsole() {
  if (fork() != 0) return;
  char line[kFloodLineBytes + 1];
  for (unsigned long long n = 0;; ++n) {
    int len = std::snprintf(line, sizeof line, "console-flood %09llu ", n);
    std::memset(line + len, 'x', kFloodLineBytes - 1 - static_cast<std::size_t>(len));
    line[kFloodLineBytes - 1] = '\n';
    if (write(STDOUT_FILENO, line, kFloodLineBytes) < 0 && errno != EINTR) usleep(1000);
  }
}

int Run() {
  ConsoleWrite("hostile-guest: starting");
  std::optional<Mode> mode = ModeFromCmdline();
  if (!mode) {
    ConsoleWrite(
        "hostile-guest: no ferry.hostile=types|deep|flood|ids|escape|console on the command line");
    return 1;
  }
  if (*mode == Mode::kEscape) ConsoleWrite(std::string("hostile console ") + std::string(kEscapes));
  if (*mode == Mode::kConsole) FloodConsole();

  // As in ferry-guest: SIGIO (host connection changes) and SIGCHLD from a signalfd.
  int sigfd = BlockedSignalFd();
  if (sigfd < 0) return 1;

  HostChannel channel("");
  Agent agent(*mode, channel);
  for (;;) {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!channel.is_open() && channel.TryOpen()) {
      usleep(100 * 1000);
      continue;
    }
    pollfd fds[2] = {{sigfd, POLLIN, 0}, channel.PollRequest()};
    int n = poll(fds, 2, channel.host_connected() ? -1 : 1000);
    if (n < 0) continue;
    if (n == 0 || (fds[0].revents & POLLIN)) {
      signalfd_siginfo info;
      while (read(sigfd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      }
      channel.RecheckHost();
    }
    if (fds[1].fd >= 0 && fds[1].revents != 0) {
      for (const auto& line : channel.OnPollResult(fds[1].revents)) {
        if (!line.overlong && !line.text.empty()) agent.OnLine(line.text);
      }
    }
  }
}

}  // namespace
}  // namespace ferry::hostile

int main() {
  int rc = ferry::hostile::Run();
  // PID 1 returning panics the kernel; with panic=-1 and -no-reboot QEMU exits.
  return rc;
}
