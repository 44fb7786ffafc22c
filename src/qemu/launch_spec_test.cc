#include "qemu/launch_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace ferry::qemu {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

LaunchSpec Sample() {
  LaunchSpec s;
  s.name = "web-1";
  s.memory_mib = 256;
  s.ram_fd = 3;
  s.kernel_fd = 4;
  s.initrd_fd = 5;
  s.kernel_cmdline = "console=ttyS0 quiet";
  s.qmp_fd = 6;
  s.guest_fd = 7;
  s.console_fd = 8;
  NicSpec nic;
  nic.mac = *MacAddress::Parse("52:54:00:aa:bb:cc");
  nic.forwards.push_back({"127.0.0.1", 16379, 6379});
  s.nics.push_back(nic);
  return s;
}

// The value following `flag` whose text contains `needle`.
std::string ValueOf(const std::vector<std::string>& argv, const std::string& flag,
                    const std::string& needle = "") {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && argv[i + 1].find(needle) != std::string::npos) return argv[i + 1];
  }
  return "";
}

TEST(LaunchSpecTest, RamIsTheAgentsFileMappedShared) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_EQ(ValueOf(argv, "-object", "memory-backend-file"),
            "memory-backend-file,id=ram0,size=262136K,mem-path=/proc/self/fd/3,share=on");
  EXPECT_THAT(ValueOf(argv, "-machine"), HasSubstr("memory-backend=ram0"));
  EXPECT_EQ(ValueOf(argv, "-m"), "262136K");
}

TEST(LaunchSpecTest, TcgRamIsNotAMultipleOf256KibButKvmRamIsExact) {
  // Under TCG, QEMU 7.2 migrates a RAM block whose length is a multiple of 256 KiB with lost
  // writes (see GuestRamKib); KVM is not affected and keeps the size asked for.
  LaunchSpec tcg = Sample();
  tcg.memory_mib = 1024;
  EXPECT_EQ(GuestRamKib(tcg), 1024u * 1024 - 8);
  EXPECT_NE(GuestRamKib(tcg) % 256, 0u);
  EXPECT_EQ(ValueOf(BuildCommandLine(tcg), "-m"), "1048568K");
  LaunchSpec kvm = tcg;
  kvm.accelerator = Accelerator::kKvm;
  EXPECT_EQ(GuestRamKib(kvm), 1024u * 1024);
  EXPECT_EQ(ValueOf(BuildCommandLine(kvm), "-m"), "1048576K");
}

TEST(LaunchSpecTest, TcgRamIsExactFromQemu9WhereTheBugIsFixed) {
  LaunchSpec spec = Sample();
  spec.memory_mib = 1024;
  spec.qemu_version = {7, 2, 22};
  EXPECT_EQ(GuestRamKib(spec), 1024u * 1024 - 8);
  spec.qemu_version = {8, 2, 9};
  EXPECT_EQ(GuestRamKib(spec), 1024u * 1024 - 8);
  spec.qemu_version = {9, 0, 0};
  EXPECT_EQ(GuestRamKib(spec), 1024u * 1024);
  spec.qemu_version = {10, 0, 2};
  EXPECT_EQ(GuestRamKib(spec), 1024u * 1024);
  auto argv = BuildCommandLine(spec);
  EXPECT_EQ(ValueOf(argv, "-m"), "1048576K");
  EXPECT_THAT(ValueOf(argv, "-object", "memory-backend-file"), HasSubstr("size=1048576K,"));
  // A version ferryd could not read keeps the workaround: exact RAM on a QEMU with the bug
  // loses the guest's writes.
  spec.qemu_version = {};
  EXPECT_EQ(GuestRamKib(spec), 1024u * 1024 - 8);
}

TEST(LaunchSpecTest, PrivateMappingWhenNotShared) {
  auto spec = Sample();
  spec.ram_shared = false;
  EXPECT_THAT(ValueOf(BuildCommandLine(spec), "-object"), HasSubstr("share=off"));
}

TEST(LaunchSpecTest, DataDiskIsAChainOfNodesOverFdSetsWithTheTopNamedForQmp) {
  auto spec = Sample();
  EXPECT_EQ(ValueOf(BuildCommandLine(spec), "-blockdev"), "");
  spec.disk = {{10, 11}, {-1, 12}, {-1, 13}};
  spec.disk_node = DiskNodeName("/state/vms/db/disk-5f3a.qcow2");
  EXPECT_EQ(spec.disk_node, "top-disk-5f3a");
  auto argv = BuildCommandLine(spec);
  // The base first, each image reached only through an fd set; no backing file is opened by
  // the name an image records, and only the top is writable.
  std::vector<std::string> blockdevs, fdsets;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "-blockdev") blockdevs.push_back(argv[i + 1]);
    if (argv[i] == "-add-fd") fdsets.push_back(argv[i + 1]);
  }
  EXPECT_THAT(fdsets, Contains("fd=10,set=10"));
  EXPECT_THAT(fdsets, Contains("fd=11,set=10"));
  EXPECT_THAT(fdsets, Contains("fd=13,set=13"));
  ASSERT_EQ(blockdevs.size(), 6u);
  EXPECT_EQ(blockdevs[0],
            R"({"driver":"file","filename":"/dev/fdset/13","node-name":"backing2-file","read-only":true})");
  EXPECT_EQ(blockdevs[1],
            R"({"backing":null,"driver":"qcow2","file":"backing2-file","node-name":"backing2","read-only":true})");
  EXPECT_EQ(blockdevs[3],
            R"({"backing":"backing2","driver":"qcow2","file":"backing1-file","node-name":"backing1","read-only":true})");
  EXPECT_EQ(blockdevs[4],
            R"({"discard":"unmap","driver":"file","filename":"/dev/fdset/10","node-name":"top-disk-5f3a-file"})");
  EXPECT_EQ(blockdevs[5],
            R"({"backing":"backing1","discard":"unmap","driver":"qcow2","file":"top-disk-5f3a-file","node-name":"top-disk-5f3a"})");
  EXPECT_EQ(ValueOf(argv, "-device", "virtio-blk"), "virtio-blk-pci,drive=top-disk-5f3a,id=vd0");
}

TEST(LaunchSpecTest, EveryFileIsAnInheritedDescriptorNeverAPath) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_EQ(ValueOf(argv, "-kernel"), "/proc/self/fd/4");
  EXPECT_EQ(ValueOf(argv, "-initrd"), "/proc/self/fd/5");
  for (const std::string& arg : argv) {
    EXPECT_THAT(arg, ::testing::Not(HasSubstr("/state"))) << arg;
    EXPECT_THAT(arg, ::testing::Not(HasSubstr("path=/dev/shm"))) << arg;
  }
}

TEST(LaunchSpecTest, AcceleratorSelectsMachineAndCpu) {
  auto spec = Sample();
  spec.accelerator = Accelerator::kTcg;
  auto argv = BuildCommandLine(spec);
  EXPECT_THAT(ValueOf(argv, "-machine"), HasSubstr("accel=tcg"));
  EXPECT_EQ(ValueOf(argv, "-cpu"), "max");
  spec.accelerator = Accelerator::kKvm;
  argv = BuildCommandLine(spec);
  EXPECT_THAT(ValueOf(argv, "-machine"), HasSubstr("accel=kvm"));
  EXPECT_EQ(ValueOf(argv, "-cpu"), "host");
}

TEST(LaunchSpecTest, ForwardsListenOnLoopbackOnlyAndTheGuestReachesNothingElse) {
  EXPECT_EQ(ValueOf(BuildCommandLine(Sample()), "-netdev"),
            "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:16379-:6379");
  EXPECT_EQ(ValueOf(BuildCommandLine(Sample()), "-device", "virtio-net"),
            "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc");
}

TEST(LaunchSpecTest, TapNicOpensFerrysTapWithoutScriptsOrVhost) {
  auto spec = Sample();
  spec.nics[0].backend = NicSpec::Backend::kTap;
  spec.nics[0].forwards.clear();
  spec.nics[0].tap_fd = 9;
  auto argv = BuildCommandLine(spec);
  EXPECT_EQ(ValueOf(argv, "-netdev"), "tap,id=net0,fd=9,vhost=off");
  EXPECT_EQ(ValueOf(argv, "-device", "virtio-net"),
            "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc");
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "-netdev"), 1);
  for (const auto& a : argv) EXPECT_THAT(a, ::testing::Not(HasSubstr("hostfwd"))) << a;
}

TEST(LaunchSpecTest, ChannelsAreSocketsFerrydBoundThatDoNotBlockStartup) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_EQ(ValueOf(argv, "-chardev", "qmp0"), "socket,id=qmp0,fd=6,server=on,wait=off");
  EXPECT_EQ(ValueOf(argv, "-mon"), "chardev=qmp0,mode=control");
  EXPECT_EQ(ValueOf(argv, "-chardev", "guest0"), "socket,id=guest0,fd=7,server=on,wait=off");
  EXPECT_THAT(argv, Contains("virtserialport,bus=vser0.0,chardev=guest0,name=org.ferry.guest"));
}

TEST(LaunchSpecTest, NoDefaultDevicesNoDisplayNoReboot) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_THAT(argv, Contains("-nodefaults"));
  EXPECT_THAT(argv, Contains("-no-reboot"));
  EXPECT_EQ(ValueOf(argv, "-display"), "none");
  EXPECT_EQ(argv.front(), "qemu-system-x86_64");
}

TEST(LaunchSpecTest, CommasInValuesAreEscaped) {
  auto spec = Sample();
  spec.name = "a,b";
  EXPECT_EQ(ValueOf(BuildCommandLine(spec), "-name"), "guest=a,,b,debug-threads=on");
  EXPECT_EQ(EscapeOptionValue("x,y,,z"), "x,,y,,,,z");
}

// The keys of a QEMU option value as QEMU splits it: at each single ',' (",," is a literal comma).
std::vector<std::string> OptionKeys(const std::string& value) {
  std::vector<std::string> keys;
  std::string item;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size() && value[i] == ',' && i + 1 < value.size() && value[i + 1] == ',') {
      item += ',';
      ++i;
    } else if (i == value.size() || value[i] == ',') {
      keys.push_back(item.substr(0, item.find('=')));
      item.clear();
    } else {
      item += value[i];
    }
  }
  return keys;
}

TEST(LaunchSpecTest, NoStringFieldCanAddAnOption) {
  const std::string evil = ",romfile=/etc/ferry/tls/host.key";
  auto spec = Sample();
  spec.name += evil;
  spec.disk = {{10, 11}};
  spec.disk_node = "top-d" + evil;
  spec.nics[0].forwards[0].host_address += evil;
  for (const std::string& arg : BuildCommandLine(spec)) {
    if (arg.front() == '{') {  // JSON (-blockdev): its strings are quoted, never split
      EXPECT_FALSE(nlohmann::json::parse(arg).contains("romfile")) << arg;
      continue;
    }
    EXPECT_THAT(OptionKeys(arg), ::testing::Not(Contains("romfile"))) << arg;
  }
}

TEST(LaunchSpecTest, MacAndGenerationIdAreTypedAndPrintedCanonically) {
  auto spec = Sample();
  spec.vmgenid = *Guid::Parse("6F1A7C1E-1111-2222-3333-444455556666");
  auto argv = BuildCommandLine(spec);
  EXPECT_THAT(ValueOf(argv, "-device", "virtio-net-pci"), HasSubstr(",mac=52:54:00:aa:bb:cc"));
  EXPECT_THAT(argv, Contains("vmgenid,guid=6f1a7c1e-1111-2222-3333-444455556666"));
  spec.nics[0].mac.reset();
  EXPECT_THAT(ValueOf(BuildCommandLine(spec), "-device", "virtio-net-pci"),
              ::testing::Not(HasSubstr("mac=")));
}

TEST(LaunchSpecTest, ClonesWaitPausedForTheirDeviceStateAndGetANewGeneration) {
  auto spec = Sample();
  auto argv = BuildCommandLine(spec);
  EXPECT_THAT(argv, Contains("vmgenid,guid=auto"));
  EXPECT_THAT(argv, ::testing::Not(Contains("-incoming")));
  spec.incoming = true;
  spec.vmgenid = *Guid::Parse("6f1a7c1e-1111-2222-3333-444455556666");
  argv = BuildCommandLine(spec);
  EXPECT_EQ(ValueOf(argv, "-incoming"), "defer");
  EXPECT_THAT(argv, Contains("-S"));
  EXPECT_THAT(argv, Contains("vmgenid,guid=6f1a7c1e-1111-2222-3333-444455556666"));
}

TEST(LaunchSpecTest, ASpareStopsBeforeTheMachineWithNoRamAndOpensItFromItsSlot) {
  auto spec = Sample();
  spec.ram_fd = -1;
  spec.incoming = true;
  spec.preconfig = true;
  spec.ram_slot_fd = 9;
  auto argv = BuildCommandLine(spec);
  EXPECT_THAT(argv, Contains("-preconfig"));
  EXPECT_EQ(ValueOf(argv, "-object", "memory-backend"), "");
  EXPECT_THAT(ValueOf(argv, "-machine"), ::testing::Not(HasSubstr("memory-backend")));
  EXPECT_EQ(ValueOf(argv, "-m"), "262136K");  // the size its RAM will have
  EXPECT_EQ(ValueOf(argv, "-incoming"), "defer");
  EXPECT_EQ(SpareRamPath(spec.ram_slot_fd), "/proc/self/fd/9/ram");
  EXPECT_THAT(BuildCommandLine(Sample()), ::testing::Not(Contains("-preconfig")));
}

TEST(LaunchSpecTest, QemuIsSandboxedWithNoWayBackToPrivilege) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_EQ(ValueOf(argv, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
  // QEMU is spawned as its own user: it drops nothing itself.
  EXPECT_THAT(argv, ::testing::Not(Contains("-runas")));
}

TEST(LaunchSpecTest, ConsoleIsAppendedSoRotationCanTruncateIt) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_THAT(argv, Contains("fd=8,set=8"));
  EXPECT_EQ(ValueOf(argv, "-chardev", "serial0"), "file,id=serial0,append=on,path=/dev/fdset/8");
}

TEST(LaunchSpecTest, KernelCmdlineIsPassedAsOneArgument) {
  auto argv = BuildCommandLine(Sample());
  EXPECT_EQ(ValueOf(argv, "-append"), "console=ttyS0 quiet");
}

}  // namespace
}  // namespace ferry::qemu
