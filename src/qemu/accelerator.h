// Which accelerator QEMU gets. KVM is used only where it can run a stock guest kernel: the CPU
// has hardware virtualisation (vmx/svm) and the host is not a PVM nested host, whose /dev/kvm
// hangs a stock kernel right after the decompressor. Everywhere else: TCG.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::qemu {

enum class Accelerator { kKvm, kTcg };

const char* AcceleratorName(Accelerator a);  // "kvm" / "tcg"
// The accelerator a name (as AcceleratorName writes it, in VM records and manifests) says;
// nullopt for any other name.
std::optional<Accelerator> AcceleratorFromName(std::string_view name);
// The -cpu models ferry gives QEMU: the host's CPU under KVM, QEMU's "max" under TCG. They are
// recorded in snapshot manifests ("q35/host"), so they are part of that format.
inline constexpr const char* kKvmCpuModel = "host";
inline constexpr const char* kTcgCpuModel = "max";
// The -cpu model ferry gives QEMU under `a`.
const char* CpuModelFor(Accelerator a);

// What the host shows; gathered by ProbeHost(), filled by hand in tests.
struct AcceleratorProbe {
  std::string cpuinfo;        // contents of /proc/cpuinfo
  bool kvm_device_usable = false;  // /dev/kvm opens read-write
  bool pvm_host = false;      // the kvm_pvm module is loaded (/sys/module/kvm_pvm)
};

struct AcceleratorChoice {
  Accelerator accelerator = Accelerator::kTcg;
  std::string reason;  // one line for the log and `ferry host show`
};

AcceleratorProbe ProbeHost();
AcceleratorChoice ChooseAccelerator(const AcceleratorProbe& probe);

}  // namespace ferry::qemu
