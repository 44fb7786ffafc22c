#include "bench/harness/bench_ferryd.h"

#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "bench/harness/testbed.h"
#include "core/files.h"
#include "testbed/ferryd_process.h"

namespace ferry::bench {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
constexpr milliseconds kStartTimeout(30000);
constexpr milliseconds kCleanupCommandTimeout(30000);
constexpr milliseconds kStopTimeout(10000);
constexpr size_t kLogTailBytes = 600;

std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

}  // namespace

std::string CliRun::Command() const {
  std::string out = "ferry";
  for (const auto& a : args) out += " " + a;
  return out;
}

Status CliRun::ToStatus() const {
  if (ok()) return Status::Ok();
  std::string said = LastLine(output);
  return Status::Unavailable("`" + Command() + "` " + exit.Describe() +
                             (said.empty() ? "" : ": " + said));
}

BenchFerryd::BenchFerryd(const BenchConfig& config, ScratchDir state_dir, ScratchDir ram_dir)
    : ferry_binary_(config.ferry_binary()),
      state_dir_(std::move(state_dir)),
      ram_dir_(std::move(ram_dir)) {
  socket_ = state_dir_->Join("ferryd.sock");
  log_ = state_dir_->Join("ferryd.log");
}

Result<std::unique_ptr<BenchFerryd>> BenchFerryd::Start(const BenchConfig& config,
                                                        const BenchFerrydOptions& options) {
  FERRY_ASSIGN_OR_RETURN(ScratchDir state, ScratchDir::Create("/tmp", "ferry-bench"));
  FERRY_ASSIGN_OR_RETURN(ScratchDir ram, ScratchDir::Create("/dev/shm", "ferry-bench"));
  std::unique_ptr<BenchFerryd> d(new BenchFerryd(config, std::move(state), std::move(ram)));
  if (d->socket_.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument("socket path " + d->socket_ + " is too long for a UNIX socket");
  }
  testbed::FerrydLaunch launch{
      config.ferryd_binary(), d->state_dir(),
      d->ram_dir(),           d->socket_,
      options.netns,          {"--image-dir", config.image_dir(), "--qemu", config.qemu_binary}};
  launch.extra_args.insert(launch.extra_args.end(), options.extra_args.begin(),
                           options.extra_args.end());
  FERRY_ASSIGN_OR_RETURN(d->ferryd_,
                         testbed::SpawnFerryd(testbed::FerrydCommandLine(launch), d->log_));
  FERRY_RETURN_IF_ERROR(d->WaitUntilServing(kStartTimeout));
  return d;
}

Status BenchFerryd::WaitUntilServing(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (!ferryd_->Running()) {
      auto ex = ferryd_->WaitExit(milliseconds(0));
      return Status::Unavailable("ferryd " + (ex ? ex->Describe() : std::string("exited")) +
                                 " during start-up; it said: " + OneLine(LogTail()));
    }
    if (testbed::SocketAnswers(socket_)) return Status::Ok();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return Status::DeadlineExceeded("ferryd did not serve " + socket_ + " within " +
                                  std::to_string(timeout.count() / 1000) +
                                  " s; it said: " + OneLine(LogTail()));
}

BenchFerryd::~BenchFerryd() { Stop(); }

Result<CliRun> BenchFerryd::Cli(const std::vector<std::string>& args, milliseconds timeout,
                                Wait wait) {
  CliRun run;
  run.args = args;
  const std::string out_path = state_dir_->Join("cli.out");
  ::unlink(out_path.c_str());  // Process::Spawn appends
  std::vector<std::string> argv = {ferry_binary_, "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());

  const auto start = Clock::now();
  auto p = Process::Spawn(argv, out_path);
  if (!p.ok()) return p.status().WithContext("running ferry");
  auto ex =
      wait == Wait::kInterruptible ? WaitExitUnlessInterrupted(*p, timeout) : p->WaitExit(timeout);
  const auto end = Clock::now();
  if (!ex) {
    p->Signal(SIGKILL);
    p->WaitExit(milliseconds(5000));
    if (wait == Wait::kInterruptible && Interrupted()) {
      return Status::Unavailable("interrupted during `" + run.Command() + "`");
    }
    return Status::DeadlineExceeded("`" + run.Command() + "` did not finish within " +
                                    std::to_string(timeout.count() / 1000) + " s");
  }
  run.exit = *ex;
  run.started = start;
  run.elapsed = end - start;
  auto output = ReadFile(out_path);
  run.output = output.ok() ? *output : "";
  ::unlink(out_path.c_str());
  return run;
}

Result<nlohmann::json> BenchFerryd::CliJson(const std::vector<std::string>& args,
                                            milliseconds timeout, Wait wait) {
  FERRY_ASSIGN_OR_RETURN(CliRun run, Cli(args, timeout, wait));
  FERRY_RETURN_IF_ERROR(run.ToStatus());
  auto j = nlohmann::json::parse(run.output, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::Corruption("`" + run.Command() +
                              "` printed no JSON: " + OneLine(run.output.substr(0, 200)));
  }
  return j;
}

std::string BenchFerryd::LogTail() const { return TailFile(log_, kLogTailBytes); }

void BenchFerryd::Stop() {
  if (!state_dir_) return;
  if (ferryd_ && ferryd_->Running()) {
    // Through ferryd first: it kills each QEMU and removes its files.
    auto vms = CliJson({"vm", "list", "--json"}, kCleanupCommandTimeout, Wait::kEvenIfInterrupted);
    if (vms.ok() && vms->is_array()) {
      for (const auto& vm : *vms) {
        (void)Cli({"vm", "delete", vm.value("name", ""), "--force"}, kCleanupCommandTimeout,
                  Wait::kEvenIfInterrupted);
      }
    }
    ferryd_->Signal(SIGTERM);
    if (!ferryd_->WaitExit(kStopTimeout)) {
      ferryd_->Signal(SIGKILL);
      ferryd_->WaitExit(kStopTimeout);
    }
  }
  ferryd_.reset();
  // QEMUs outlive ferryd by design; any left (a create still running when we were interrupted)
  // hold files of our state and RAM directories open (their console log, their RAM file).
  KillProcessesUsing(state_dir_->path());
  KillProcessesUsing(ram_dir_->path());
  state_dir_.reset();
  ram_dir_.reset();
}

}  // namespace ferry::bench
