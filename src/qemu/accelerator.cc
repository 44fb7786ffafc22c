#include "qemu/accelerator.h"

#include <fcntl.h>
#include <unistd.h>

#include <regex>

#include "core/files.h"

namespace ferry::qemu {

const char* AcceleratorName(Accelerator a) { return a == Accelerator::kKvm ? "kvm" : "tcg"; }

std::optional<Accelerator> AcceleratorFromName(std::string_view name) {
  if (name == AcceleratorName(Accelerator::kKvm)) return Accelerator::kKvm;
  if (name == AcceleratorName(Accelerator::kTcg)) return Accelerator::kTcg;
  return std::nullopt;
}

const char* CpuModelFor(Accelerator a) {
  return a == Accelerator::kKvm ? kKvmCpuModel : kTcgCpuModel;
}

AcceleratorProbe ProbeHost() {
  AcceleratorProbe probe;
  auto cpuinfo = ReadFile("/proc/cpuinfo");
  if (cpuinfo.ok()) probe.cpuinfo = *cpuinfo;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    probe.kvm_device_usable = true;
    ::close(fd);
  }
  probe.pvm_host = PathExists("/sys/module/kvm_pvm");
  return probe;
}

AcceleratorChoice ChooseAccelerator(const AcceleratorProbe& probe) {
  static const std::regex kVirtFlag(R"(^flags\s*:.*\b(vmx|svm)\b)", std::regex::multiline);
  bool hw_virt = std::regex_search(probe.cpuinfo, kVirtFlag);
  if (!hw_virt) return {Accelerator::kTcg, "TCG: the CPU shows no vmx/svm flag"};
  if (probe.pvm_host) {
    return {Accelerator::kTcg, "TCG: /dev/kvm is a PVM nested host, which cannot boot a stock kernel"};
  }
  if (!probe.kvm_device_usable) return {Accelerator::kTcg, "TCG: /dev/kvm cannot be opened"};
  return {Accelerator::kKvm, "KVM: hardware virtualisation available"};
}

}  // namespace ferry::qemu
