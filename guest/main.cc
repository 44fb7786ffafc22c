// ferry-guest: the agent inside every ferry VM. It runs as the guest's init (PID 1, exec'd by
// the image's /init once the system is up), reports on the serial console and the virtio port
// when the guest's services answer, and serves the fixed ops of protocol.h to the host.
//
// One thread, one poll() loop: the port, a signalfd (SIGCHLD to reap orphans, SIGIO for host
// connection changes) and, until the services are up, a short timeout to probe them.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "guest/actions.h"
#include "guest/child_reaper.h"
#include "guest/console.h"
#include "guest/event_signals.h"
#include "guest/guest_system.h"
#include "guest/host_channel.h"
#include "guest/power_off.h"
#include "guest/protocol.h"
#include "guest/readiness.h"

namespace ferry::guest {
namespace {

// Boot runs under TCG emulation: probing every 20 ms finds the services promptly and costs a
// refused connect() each time. Only until they are up.
constexpr auto kReadinessPoll = std::chrono::milliseconds(20);
// While the port does not exist yet (virtio_console probing late).
constexpr int kPortRetryMs = 100;
// SIGIO announces a host connecting; this is the backstop should one be missed.
constexpr auto kHostRecheck = std::chrono::seconds(1);
constexpr int kShutdownReplyFlushMs = 1000;
constexpr auto kServiceStopGrace = std::chrono::milliseconds(2000);

struct Options {
  std::string port_path;  // empty: find the port by name
  std::string cmdline_path = "/proc/cmdline";
};

constexpr std::string_view kUsage =
    "usage: ferry-guest [--port DEVICE] [--cmdline FILE]\n"
    "  Guest agent of ferry; runs as PID 1 in a ferry guest image.\n"
    "  --port DEVICE   use DEVICE as the host channel instead of the virtio-serial port\n"
    "                  named org.ferry.guest\n"
    "  --cmdline FILE  read ferry.services= from FILE instead of /proc/cmdline\n";

bool ParseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if ((arg == "--port" || arg == "--cmdline") && i + 1 < argc) {
      (arg == "--port" ? options.port_path : options.cmdline_path) = argv[++i];
    } else {
      return false;
    }
  }
  return true;
}

void HandleLines(std::vector<LineReader::Line> lines, GuestActions& actions, HostChannel& channel,
                 ChildReaper& reaper) {
  for (LineReader::Line& line : lines) {
    if (line.overlong) {
      channel.Send(GuestActions::OverlongLineReply());
      continue;
    }
    if (line.text.empty()) continue;
    ActionReply reply = actions.HandleLine(line.text);
    channel.Send(std::move(reply.line));
    if (reply.after_reply) {
      // Off the loop: its sleeps must not hold up the next request (SIGCHLD and SIGIO stay
      // blocked in the new thread, as in this one, so the signalfd still takes them).
      std::thread([after = std::move(reply.after_reply)] {
        const std::string error = after();
        if (!error.empty()) ConsoleLine(error);
      }).detach();
    }
    if (reply.power_off_after) {
      // The host learns the shutdown was accepted before the port goes away with the VM.
      if (!channel.Flush(kShutdownReplyFlushMs)) ConsoleLine("shutdown reply not delivered");
      ConsoleLine(PowerOffGuest(reaper, kServiceStopGrace));
    }
  }
}

int Run(const Options& options) {
  ConsoleWrite(kStartingMarker);
  int sigfd = BlockedSignalFd();
  if (sigfd < 0) {
    ConsoleLine(std::string("signalfd failed: ") + std::strerror(errno));
    return 1;
  }

  auto system = NewLinuxGuestSystem();
  ServiceList services = ParseServices(system->ReadFile(options.cmdline_path).value_or(""));
  for (const std::string& error : services.errors) ConsoleLine(error);
  Readiness readiness(services.services, ServiceAnswers);
  GuestActions actions(*system, readiness);
  HostChannel channel(options.port_path);
  ChildReaper reaper;
  std::string last_open_error;
  auto last_recheck = std::chrono::steady_clock::now();
  auto last_probe = last_recheck - kReadinessPoll;

  for (;;) {
    reaper.ReapExited();

    if (!channel.is_open()) {
      auto error = channel.TryOpen();
      if (error && *error != last_open_error) ConsoleLine(*error);  // once per distinct reason
      last_open_error = error.value_or("");
    }

    // Time-gated, so a host sending many requests before ready does not multiply the probes.
    auto now = std::chrono::steady_clock::now();
    if (!readiness.ready() && now - last_probe >= kReadinessPoll) {
      last_probe = now;
      if (readiness.Poll()) {
        ConsoleWrite(kReadyMarker);
        channel.Send(actions.ReadyEvent());
      }
    }

    if (channel.is_open() && !channel.host_connected() && now - last_recheck >= kHostRecheck) {
      channel.RecheckHost();
      last_recheck = now;
    }

    pollfd fds[2] = {{sigfd, POLLIN, 0}, channel.PollRequest()};  // poll() skips fd -1
    int timeout_ms = -1;
    if (!readiness.ready()) {
      timeout_ms = static_cast<int>(kReadinessPoll.count());
    } else if (!channel.is_open()) {
      timeout_ms = kPortRetryMs;
    } else if (!channel.host_connected()) {
      timeout_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(kHostRecheck).count());
    }
    int n = poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno != EINTR) {
        ConsoleLine(std::string("poll failed: ") + std::strerror(errno));
        sleep(1);  // do not spin on a persistent error; nothing else can be done as init
      }
      continue;
    }

    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(sigfd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
        if (info.ssi_signo == SIGIO) channel.RecheckHost();
      }
    }
    if (fds[1].fd >= 0 && fds[1].revents != 0) {
      HandleLines(channel.OnPollResult(fds[1].revents), actions, channel, reaper);
    }
  }
}

}  // namespace
}  // namespace ferry::guest

int main(int argc, char** argv) {
  ferry::guest::Options options;
  if (!ferry::guest::ParseOptions(argc, argv, options)) {
    fputs(std::string(ferry::guest::kUsage).c_str(), stderr);
    return 2;
  }
  int rc = ferry::guest::Run(options);
  // As PID 1, returning would panic the kernel; the image's cmdline has panic=-1 so QEMU exits
  // and the host sees a dead VM rather than a hung one.
  return rc;
}
