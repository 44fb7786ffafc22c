#include "bench/baselines/bare_spec.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "bench/harness/namespace_hosts.h"
#include "core/files.h"
#include "core/ids.h"

namespace ferry::bench {

namespace {

constexpr char kImage[] = "default";

// The RAM file as HostLaunchSteps::CreateRamFile makes a VM's: a leftover of that name removed,
// then created afresh (never through a planted symlink) and sized, sparse.
Result<UniqueFd> CreateRamFile(const std::string& path, uint64_t memory_mib) {
  ::unlink(path.c_str());
  FERRY_ASSIGN_OR_RETURN(int made, CreateExclusive(path, O_RDWR, 0600));
  UniqueFd fd(made);
  if (::ftruncate(fd.get(), static_cast<off_t>(memory_mib << 20)) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return Status::ResourceExhausted("cannot size RAM file " + path + ": " + std::strerror(err));
  }
  return fd;
}

std::vector<std::string> Normalized(std::vector<std::string> argv, const PerVmValues& v) {
  std::vector<std::pair<std::string, std::string>> swaps = {
      {"guest=" + v.name + ",", "guest=<name>,"},
      {"mac=" + v.mac, "mac=<mac>"},
  };
  if (v.host_port != 0) swaps.push_back({":" + std::to_string(v.host_port) + "-:", ":<port>-:"});
  if (!v.address.empty()) swaps.push_back({"ferry.ip=" + v.address, "ferry.ip=<address>"});
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

}  // namespace

Result<BareLaunch::Opened> BareLaunch::Open(const std::string& netns) const {
  Opened out;
  out.spec = spec;
  UniqueFd ram;
  if (!ram_path.empty()) {
    FERRY_ASSIGN_OR_RETURN(ram, CreateRamFile(ram_path, spec.memory_mib));
  }
  auto open = [&] { return vm::OpenQemuFiles(files, std::move(ram), out.spec, out.start); };
  Status st = netns.empty() ? open() : InNetworkNamespace(netns, open);
  if (!st.ok()) {
    if (!ram_path.empty()) ::unlink(ram_path.c_str());
    return st.WithContext("bare QEMU " + spec.name);
  }
  out.argv = qemu::BuildCommandLine(out.spec);
  return out;
}

PerVmValues PerVmValues::FromShow(const nlohmann::json& show) {
  const nlohmann::json network =
      show.value("spec", nlohmann::json::object()).value("network", nlohmann::json::object());
  return {show.value("name", ""), show.value("mac", ""), 0, network.value("ip", "")};
}

PerVmValues PerVmValues::FromSpec(const qemu::LaunchSpec& spec, uint16_t host_port,
                                  std::string address) {
  return {spec.name, spec.nics.empty() || !spec.nics[0].mac ? "" : spec.nics[0].mac->ToString(),
          host_port, std::move(address)};
}

Status CompareCommandLines(const std::vector<std::string>& ferry_argv, const PerVmValues& ferry_vm,
                           const std::vector<std::string>& bare_argv, const PerVmValues& bare_vm,
                           const std::string& fix_hint) {
  auto a = Normalized(ferry_argv, ferry_vm);
  auto b = Normalized(bare_argv, bare_vm);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string fa = i < a.size() ? a[i] : "(nothing)";
    std::string ba = i < b.size() ? b[i] : "(nothing)";
    if (fa != ba) {
      return Status::FailedPrecondition(
          "the bare QEMU command line differs from ferryd's at argument " + std::to_string(i) +
          ": ferryd has '" + fa + "', the benchmark built '" + ba + "'; " + fix_hint);
    }
  }
  return Status::Ok();
}

Result<GuestSetup> GuestSetup::Find(const BenchConfig& config) {
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
  GuestSetup g;
  g.image = *image;
  if (g.image.ready_marker.empty()) {
    return Status::FailedPrecondition("image " + g.image.dir + " names no ready_marker");
  }
  g.guest_port = g.image.services.empty() ? 6379 : g.image.services.front().guest_port;
  g.accel = qemu::ChooseAccelerator(qemu::ProbeHost());
  g.qemu_binary = config.qemu_binary;
  auto line = qemu::QemuVersionLine(config.qemu_binary, "/tmp");
  if (!line.ok()) return line.status().WithContext("the bench's QEMU");
  auto version = qemu::ParseQemuVersion(*line);
  if (!version.ok()) return version.status().WithContext("the bench's QEMU " + config.qemu_binary);
  g.qemu_version_line = *line;
  g.qemu_version = *version;
  return g;
}

BareLaunch GuestSetup::BareSpec(const std::string& name, const std::string& dir,
                                const std::string& ram_dir, uint64_t memory_mib,
                                uint16_t host_port) const {
  BareLaunch b;  // field by field as VmLauncher::LaunchSpecFor fills it for a booted VM
  qemu::LaunchSpec& s = b.spec;
  vm::QemuFilePaths& files = b.files;
  s.qemu_binary = qemu_binary;
  s.qemu_version = qemu_version;
  s.name = name;
  s.accelerator = accel.accelerator;
  s.cpus = 1;
  s.memory_mib = memory_mib;
  b.ram_path = ram_dir + "/" + name + ".ram";
  files.kernel = image.kernel;
  files.initrd = image.initrd;
  s.kernel_cmdline = image.kernel_cmdline;
  files.qmp_socket = dir + "/qmp.sock";
  files.guest_socket = dir + "/guest.sock";
  files.console_log = dir + "/console.log";
  qemu::NicSpec nic;
  nic.mac = MacAddress::Random();
  nic.forwards.push_back({"127.0.0.1", host_port, guest_port});
  s.nics.push_back(nic);
  return b;
}

Status GuestSetup::CheckSameCommandLine(const nlohmann::json& show, uint16_t ferry_port,
                                        const std::string& scratch_dir) const {
  std::vector<std::string> ferry_argv = show.value("qemu_argv", std::vector<std::string>{});
  PerVmValues ferry_vm = PerVmValues::FromShow(show);
  ferry_vm.host_port = ferry_port;
  const uint16_t bare_port = static_cast<uint16_t>(ferry_port + 1);
  const std::string dir = scratch_dir + "/check";
  FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  BareLaunch bare = BareSpec("check", dir, dir, show.value("memory_mib", uint64_t{256}), bare_port);
  // Opened for real, so the descriptor numbers are the ones a bare QEMU gets; nothing runs.
  auto opened = bare.Open();
  RemoveAll(dir);
  if (!opened.ok()) return opened.status().WithContext("checking the bare command line");
  return CompareCommandLines(
      ferry_argv, ferry_vm, opened->argv, PerVmValues::FromSpec(bare.spec, bare_port),
      "make GuestSetup::BareSpec in bench/bare_spec.cc fill the LaunchSpec and its files as "
      "ferryd does");
}

std::string GuestSetup::AcceleratorNote() const {
  return std::string("accelerator: ") + qemu::AcceleratorName(accel.accelerator) + " (" +
         accel.reason + ")";
}

std::string GuestSetup::ImageNote() const {
  return "guest: image '" + image.name + "' from " + image.dir + ", 1 vCPU; ready marker '" +
         image.ready_marker + "'";
}

}  // namespace ferry::bench
