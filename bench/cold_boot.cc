// Entry cold_boot: how long a user waits for a new VM, next to QEMU booting the same guest bare.
//
//   ferry side:      `ferry vm create bN --memory M --forward PORT:6379 --wait-ready`, timed from
//                    spawning the CLI to its exit. ferryd's own boot_to_ready_ms (QEMU started
//                    to guest ready) is recorded too, from `ferry vm show bN --json`.
//   comparison side: qemu-system-x86_64 with the command line ferryd would build (same
//                    BuildCommandLine, kernel, initramfs, cmdline, RAM backend file on
//                    /dev/shm, devices and accelerator), timed from spawn to the guest's ready
//                    line on the serial console. ferry-guest prints that line right before it
//                    sends ferryd its ready event, so both sides stop at the same guest moment.
//
// During the warm-up the entry checks that the bare command line equals ferryd's (from `vm show
// --json`) except for per-VM names, paths, MAC and port, so the comparison cannot drift silently.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "bench/bare_qemu.h"
#include "bench/bench_ferryd.h"
#include "bench/runner.h"
#include "bench/scratch_dir.h"
#include "core/files.h"
#include "core/ids.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "vm/image.h"

namespace ferry::bench {
namespace {

using std::chrono::milliseconds;

constexpr char kImage[] = "default";
constexpr char kFerryTotal[] = "ferry_create_to_ready";
constexpr char kFerrydBoot[] = "ferryd_boot_to_ready";
constexpr char kBare[] = "bare_spawn_to_ready";
// ferryd's own ready timeout is 300 s; the CLI gets a little more to report it.
constexpr milliseconds kBootTimeout(330000);
constexpr milliseconds kCommandTimeout(60000);

double Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// argv with every per-VM value replaced by a placeholder, so two VMs' command lines compare.
struct PerVmValues {
  std::string name, mac, ram_path, console_log, qmp_socket, guest_socket;
  uint16_t host_port = 0;
};

std::vector<std::string> Normalized(std::vector<std::string> argv, const PerVmValues& v) {
  const std::vector<std::pair<std::string, std::string>> swaps = {
      {v.ram_path, "<ram>"},
      {v.console_log, "<console>"},
      {v.qmp_socket, "<qmp>"},
      {v.guest_socket, "<guest>"},
      {"guest=" + v.name + ",", "guest=<name>,"},
      {"mac=" + v.mac, "mac=<mac>"},
      {":" + std::to_string(v.host_port) + "-:", ":<port>-:"},
  };
  for (std::string& arg : argv) {
    for (const auto& [from, to] : swaps) {
      if (from.empty()) continue;
      for (size_t at = arg.find(from); at != std::string::npos; at = arg.find(from, at + 1)) {
        arg.replace(at, from.size(), to);
      }
    }
  }
  return argv;
}

class ColdBoot : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {"cold_boot",
            "cold boot of the default VM until its guest is ready (redis answers)",
            "`ferry vm create bN --memory M --forward PORT:6379 --wait-ready`: spawn of the CLI "
            "to its exit",
            "bare qemu-system-x86_64, same command line, no ferryd: spawn to the ready line on the "
            "serial console",
            {
                {"cold boot to ready", kFerryTotal, kBare, Goal::MaxOverheadPercent(5)},
                {"ferryd boot_to_ready_ms", kFerrydBoot, kBare, Goal::None()},
            }};
  }

  Status SetUp(const BenchConfig& config) override {
    config_ = config;
    for (const std::string& binary : {config.ferryd_binary(), config.ferry_binary()}) {
      if (::access(binary.c_str(), X_OK) != 0) {
        return Status::NotFound(binary + " is missing; build ferry first (cmake --build " +
                                config.build_dir + "), or pass --build-dir");
      }
    }
    auto image = vm::ImageCatalog({config.image_dir()}).Find(kImage);
    if (!image.ok()) {
      return Status::NotFound("guest image '" + std::string(kImage) + "' is not built in " +
                              config.image_dir() + " (" + image.status().message() +
                              "); run the README's setup, then cmake --build " + config.build_dir +
                              " --target image-default");
    }
    image_ = *image;
    if (image_.ready_marker.empty()) {
      return Status::FailedPrecondition("image " + image_.dir + " names no ready_marker");
    }
    guest_port_ = image_.services.empty() ? 6379 : image_.services.front().guest_port;
    accel_ = qemu::ChooseAccelerator(qemu::ProbeHost());

    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-qemu"));
    FERRY_ASSIGN_OR_RETURN(ScratchDir ram, ScratchDir::Create("/dev/shm", "ferry-bench-qemu"));
    bare_dir_ = std::move(dir);
    bare_ram_dir_ = std::move(ram);
    qemu_version_ = QemuVersion();

    auto ferryd = BenchFerryd::Start(config);
    if (!ferryd.ok()) return ferryd.status();
    ferryd_ = std::move(ferryd).value();
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    return trial.side == Side::kFerry ? RunFerry(trial) : RunBare(trial);
  }

  std::vector<std::string> Notes() const override {
    return {
        std::string("accelerator: ") + qemu::AcceleratorName(accel_.accelerator) + " (" +
            accel_.reason + ")",
        "guest: image '" + image_.name + "' from " + image_.dir + ", " +
            std::to_string(config_.memory_mib) + " MiB, 1 vCPU; ready marker '" +
            image_.ready_marker + "'",
        "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
        "command lines: bare QEMU's equals ferryd's up to per-VM name, paths, MAC and port "
        "(checked in the warm-up)",
        "ratio = ferry median / comparison median; overhead = ratio - 1",
    };
  }

  void TearDown() override {
    if (ferryd_) ferryd_->Stop();
    ferryd_.reset();
    if (bare_dir_) KillProcessesNaming(bare_dir_->path());
    bare_dir_.reset();
    bare_ram_dir_.reset();
  }

 private:
  Result<Measurements> RunFerry(const Trial& trial) {
    const std::string name = "b" + std::to_string(trial.round);
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    FERRY_ASSIGN_OR_RETURN(
        CliRun create,
        ferryd_->Cli(
            {"vm", "create", name, "--memory", std::to_string(config_.memory_mib), "--forward",
             std::to_string(port) + ":" + std::to_string(guest_port_), "--wait-ready"},
            kBootTimeout));
    Status st = create.ToStatus();
    Measurements m;
    if (st.ok()) {
      auto show = ferryd_->CliJson({"vm", "show", name, "--json"}, kCommandTimeout);
      st = show.status();
      if (st.ok()) {
        m[kFerryTotal] = Millis(create.elapsed);
        m[kFerrydBoot] = show->value("boot_to_ready_ms", 0.0);
        if (m[kFerrydBoot] <= 0) {
          st = Status::Internal("vm " + name + " reports no boot_to_ready_ms");
        }
      }
      if (st.ok() && trial.warm_up()) st = CheckSameCommandLine(*show, port);
    }
    // Delete even after a failure, so the next run starts from nothing.
    auto del = ferryd_->Cli({"vm", "delete", name, "--force"}, kCommandTimeout);
    if (st.ok()) st = del.ok() ? del->ToStatus() : del.status();
    if (!st.ok()) return st;
    return m;
  }

  qemu::LaunchSpec BareSpec(const std::string& name, const std::string& dir,
                            uint16_t host_port) const {
    qemu::LaunchSpec s;  // field by field as VmService::Launch fills it
    s.name = name;
    s.accelerator = accel_.accelerator;
    s.cpus = 1;
    s.memory_mib = config_.memory_mib;
    s.ram_path = bare_ram_dir_->Join(name + ".ram");
    s.kernel = image_.kernel;
    s.initrd = image_.initrd;
    s.kernel_cmdline = image_.kernel_cmdline;
    s.qmp_socket = dir + "/qmp.sock";
    s.guest_socket = dir + "/guest.sock";
    s.console_log = dir + "/console.log";
    qemu::NicSpec nic;
    nic.mac = NewMac();
    nic.forwards.push_back({"127.0.0.1", host_port, guest_port_});
    s.nics.push_back(nic);
    return s;
  }

  Result<Measurements> RunBare(const Trial& trial) {
    const std::string name = "bare" + std::to_string(trial.round);
    const std::string dir = bare_dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    Result<double> elapsed = Status::Internal("not run");
    {
      auto qemu = BareQemu::Launch(BareSpec(name, dir, port), dir + "/qemu.log");
      if (!qemu.ok()) {
        elapsed = qemu.status();
      } else {
        auto seen = (*qemu)->WaitForConsole(image_.ready_marker, kBootTimeout);
        elapsed = seen.ok() ? Result<double>(Millis(*seen - (*qemu)->spawned_at()))
                            : Result<double>(seen.status());
      }
    }  // QEMU killed, RAM file removed
    RemoveAll(dir);
    if (!elapsed.ok()) return elapsed.status().WithContext("bare QEMU " + name);
    return Measurements{{kBare, *elapsed}};
  }

  // The comparison is only fair if QEMU gets the same command line from both sides.
  Status CheckSameCommandLine(const nlohmann::json& show, uint16_t ferry_port) const {
    std::vector<std::string> ferry_argv = show.value("qemu_argv", std::vector<std::string>{});
    const nlohmann::json paths = show.value("paths", nlohmann::json::object());
    PerVmValues ferry_vm{show.value("name", ""),
                         show.value("mac", ""),
                         paths.value("ram_file", ""),
                         paths.value("console_log", ""),
                         paths.value("qmp_socket", ""),
                         paths.value("guest_socket", ""),
                         ferry_port};
    const std::string dir = bare_dir_->Join("check");
    qemu::LaunchSpec bare = BareSpec("check", dir, ferry_port + 1);
    PerVmValues bare_vm{bare.name,
                        bare.nics[0].mac,
                        bare.ram_path,
                        bare.console_log,
                        bare.qmp_socket,
                        bare.guest_socket,
                        static_cast<uint16_t>(ferry_port + 1)};
    auto a = Normalized(ferry_argv, ferry_vm);
    auto b = Normalized(qemu::BuildCommandLine(bare), bare_vm);
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      std::string fa = i < a.size() ? a[i] : "(nothing)";
      std::string ba = i < b.size() ? b[i] : "(nothing)";
      if (fa != ba) {
        return Status::FailedPrecondition(
            "the bare QEMU command line differs from ferryd's at argument " + std::to_string(i) +
            ": ferryd has '" + fa + "', the benchmark built '" + ba +
            "'; make ColdBoot::BareSpec in bench/cold_boot.cc fill the LaunchSpec as ferryd does");
      }
    }
    return Status::Ok();
  }

  // First line of `qemu-system-x86_64 --version`, for the notes.
  std::string QemuVersion() const {
    const std::string out = bare_dir_->Join("qemu-version.txt");
    auto p = Process::Spawn({qemu::LaunchSpec().qemu_binary, "--version"}, out);
    if (!p.ok()) return "";
    if (!p->WaitExit(milliseconds(10000))) {
      p->Signal(SIGKILL);
      p->WaitExit(milliseconds(5000));
      return "";
    }
    auto read = ReadFile(out);
    std::string text = read.ok() ? *read : "";
    ::unlink(out.c_str());
    return text.substr(0, text.find('\n'));
  }

  BenchConfig config_;
  vm::Image image_;
  uint16_t guest_port_ = 6379;
  qemu::AcceleratorChoice accel_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> bare_dir_;
  std::optional<ScratchDir> bare_ram_dir_;
  std::string qemu_version_;
};

}  // namespace

FERRY_BENCH_ENTRY("cold_boot", ColdBoot);

}  // namespace ferry::bench
