// uffd-wp-probe: can copy-before-write (userfaultfd write-protect) serve ferry's live snapshot?
// Issue 14 names it as one design; ferry's guest RAM is a memory-backend-file share=on on tmpfs
// that QEMU maps and ferryd, another process, owns. The probe checks on this host, as root:
//
//   kernel      which userfaultfd features the kernel offers (WP on shmem, WP of unpopulated
//               pages) and whether an unprivileged process may create one
//               (vm.unprivileged_userfaultfd): ferryd runs each QEMU under a uid of its own.
//   same map    a tmpfs file mapped MAP_SHARED, registered with UFFDIO_REGISTER_MODE_WP and
//               write-protected: a write through that very mapping traps (the control).
//   other map   a second process maps the same file and writes to it while the first keeps the
//               write-protect: does the first one's userfaultfd hear of it (the design needs
//               it to), and does the protected mapping see the new bytes?
//   WP cost     UFFDIO_WRITEPROTECT over a whole populated mapping of 256 MiB, 1 GiB, 4 GiB:
//               the part of a copy-before-write pause that grows with RAM.
//   QEMU        QEMU 7.2's background-snapshot capability (the copy-before-write QEMU has) on
//               memory-backend-file share=on on /dev/shm, as root and as another uid, and on
//               memory-backend-ram; where accepted, one snapshot of the running (firmware-only)
//               guest into a file, with its pause (STOP to RESUME event) and total time.
//
//   uffd-wp-probe [--qemu qemu-system-x86_64] [--max-mib 4096]
//
// Prints one line per finding. Needs root (it also tries as uid 65534). bench/README.md and
// docs/snapshots.md record what it printed on the test host.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/baselines/qemu_snapshot.h"
#include "core/files.h"
#include "core/process.h"
#include "core/unique_fd.h"
#include "qemu/qmp_client.h"

// Linux 6.4; Debian 12's headers (6.1) lack it, the running kernel may have it.
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr size_t kPage = 4096;
constexpr uid_t kOtherUid = 65534;  // nobody: stands for ferryd's per-QEMU uid

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int NewUffd(int flags) { return static_cast<int>(::syscall(SYS_userfaultfd, flags)); }

// A userfaultfd with the WP feature, or -1.
int WpUffd() {
  int fd = NewUffd(O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  if (::ioctl(fd, UFFDIO_API, &api) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool Protect(int uffd, void* addr, size_t len, bool wp) {
  uffdio_writeprotect w{};
  w.range.start = reinterpret_cast<uint64_t>(addr);
  w.range.len = len;
  w.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return ::ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0;
}

bool Register(int uffd, void* addr, size_t len) {
  uffdio_register r{};
  r.range.start = reinterpret_cast<uint64_t>(addr);
  r.range.len = len;
  r.mode = UFFDIO_REGISTER_MODE_WP;
  return ::ioctl(uffd, UFFDIO_REGISTER, &r) == 0;
}

// Write-protect faults read from `uffd` within `wait`; each one is let through (un-protected).
int DrainFaults(int uffd, milliseconds wait) {
  int faults = 0;
  pollfd p{uffd, POLLIN, 0};
  while (::poll(&p, 1, static_cast<int>(wait.count())) > 0) {
    uffd_msg msg{};
    if (::read(uffd, &msg, sizeof msg) != sizeof msg) break;
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    ++faults;
    void* page = reinterpret_cast<void*>(msg.arg.pagefault.address & ~(kPage - 1));
    Protect(uffd, page, kPage, false);
  }
  return faults;
}

void Kernel() {
  int fd = NewUffd(O_CLOEXEC);
  uffdio_api api{};
  api.api = UFFD_API;
  if (fd < 0 || ::ioctl(fd, UFFDIO_API, &api) != 0) {
    std::printf("kernel: no userfaultfd: %s\n", std::strerror(errno));
    return;
  }
  ::close(fd);
  auto has = [&](uint64_t f) { return (api.features & f) ? "yes" : "no"; };
  std::printf("kernel: PAGEFAULT_FLAG_WP %s, WP_HUGETLBFS_SHMEM %s, WP_UNPOPULATED %s\n",
              has(UFFD_FEATURE_PAGEFAULT_FLAG_WP), has(UFFD_FEATURE_WP_HUGETLBFS_SHMEM),
              has(UFFD_FEATURE_WP_UNPOPULATED));
  auto sysctl = ReadFile("/proc/sys/vm/unprivileged_userfaultfd");
  std::printf("kernel: vm.unprivileged_userfaultfd = %s", sysctl.ok() ? sysctl->c_str() : "?\n");
  // What a QEMU under a uid of its own gets: QEMU 7.2 asks without UFFD_USER_MODE_ONLY.
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(kOtherUid) != 0 || ::setuid(kOtherUid) != 0) _exit(3);
    const int plain = NewUffd(O_CLOEXEC);
    const std::string why = plain >= 0 ? "allowed" : std::strerror(errno);
    const int user_only = NewUffd(O_CLOEXEC | UFFD_USER_MODE_ONLY);
    std::printf("kernel: as uid %u: userfaultfd() %s; with UFFD_USER_MODE_ONLY %s\n", kOtherUid,
                why.c_str(), user_only >= 0 ? "allowed" : std::strerror(errno));
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
}

// A tmpfs file of `bytes`, every page holding data; unlinked when the mapping is gone.
struct ShmFile {
  std::string path;
  int fd = -1;
  ~ShmFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

bool MakeShmFile(const std::string& dir, size_t bytes, ShmFile& f) {
  std::string tmpl = dir + "/uffd-probe-XXXXXX";
  f.fd = ::mkstemp(tmpl.data());
  if (f.fd < 0) return false;
  f.path = tmpl;
  return ::ftruncate(f.fd, static_cast<off_t>(bytes)) == 0;
}

void Mappings(const std::string& dir) {
  constexpr size_t kPages = 64;
  constexpr size_t kLen = kPages * kPage;
  ShmFile file;
  if (!MakeShmFile(dir, kLen, file)) {
    std::printf("mappings: cannot make a tmpfs file in %s\n", dir.c_str());
    return;
  }
  auto* map = static_cast<volatile char*>(
      ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0));
  std::memset(const_cast<char*>(map), 0x11, kLen);  // every page present
  const int uffd = WpUffd();
  if (uffd < 0 || !Register(uffd, const_cast<char*>(map), kLen) ||
      !Protect(uffd, const_cast<char*>(map), kLen, true)) {
    std::printf("mappings: UFFDIO_REGISTER_MODE_WP on a MAP_SHARED tmpfs mapping refused: %s\n",
                std::strerror(errno));
    return;
  }
  std::printf(
      "mappings: UFFDIO_REGISTER_MODE_WP + UFFDIO_WRITEPROTECT on a MAP_SHARED tmpfs "
      "mapping: accepted\n");
  // The control: a write through the protected mapping itself must trap.
  std::thread writer([&] { map[0] = 0x22; });
  const int same = DrainFaults(uffd, milliseconds(500));
  writer.join();
  // A second mapping of the same file in this process.
  auto* second = static_cast<volatile char*>(
      ::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0));
  second[kPage] = 0x33;
  const int second_faults = DrainFaults(uffd, milliseconds(300));
  // Another process mapping the file, as QEMU maps the RAM file ferryd owns.
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child == 0) {
    int fd = ::open(file.path.c_str(), O_RDWR | O_CLOEXEC);
    auto* m = static_cast<char*>(::mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    for (size_t i = 2; i < kPages; ++i) m[i * kPage] = 0x44;
    _exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  const int other = DrainFaults(uffd, milliseconds(500));
  size_t seen = 0;
  for (size_t i = 2; i < kPages; ++i) seen += map[i * kPage] == 0x44;
  std::printf("mappings: write through the protected mapping: %d fault(s) (control)\n", same);
  std::printf(
      "mappings: write through a second mapping in the same process: %d fault(s), "
      "page now %s\n",
      second_faults, map[kPage] == 0x33 ? "changed under the protection" : "unchanged");
  std::printf(
      "mappings: writes by another process through its own mapping: %d fault(s) for %zu "
      "pages written; the protected mapping sees %zu of them changed, no copy was taken "
      "before\n",
      other, kPages - 2, seen);
  ::munmap(const_cast<char*>(second), kLen);
  ::munmap(const_cast<char*>(map), kLen);
  ::close(uffd);
}

// What write-protecting a whole populated shared mapping costs, the part of a copy-before-write
// pause that grows with the RAM's size.
void WpCost(const std::string& dir, uint64_t mib) {
  const size_t len = static_cast<size_t>(mib) << 20;
  ShmFile file;
  if (!MakeShmFile(dir, len, file)) {
    std::printf("wp cost %lu MiB: cannot make the file\n", static_cast<unsigned long>(mib));
    return;
  }
  auto* map =
      static_cast<char*>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0));
  for (size_t off = 0; off < len; off += kPage) map[off] = 1;  // data in every page
  const int uffd = WpUffd();
  const auto t0 = Clock::now();
  const bool registered = Register(uffd, map, len);
  const auto t1 = Clock::now();
  const bool protected_ = registered && Protect(uffd, map, len, true);
  const auto t2 = Clock::now();
  const bool released = protected_ && Protect(uffd, map, len, false);
  const auto t3 = Clock::now();
  if (!released) {
    std::printf("wp cost %lu MiB: failed: %s\n", static_cast<unsigned long>(mib),
                std::strerror(errno));
  } else {
    std::printf(
        "wp cost %lu MiB (populated, MAP_SHARED tmpfs): register %.2f ms, "
        "write-protect all %.2f ms, un-protect all %.2f ms\n",
        static_cast<unsigned long>(mib), Ms(t1 - t0), Ms(t2 - t1), Ms(t3 - t2));
  }
  ::close(uffd);
  ::munmap(map, len);
}

struct QemuCase {
  std::string label;
  std::string backend;  // "file-shared", "file-private", "ram"
  bool other_uid = false;
};

// Connects to a QEMU's QMP socket, retrying while QEMU starts.
Result<std::unique_ptr<qemu::QmpClient>> ConnectQmp(const std::string& socket, Process& qemu) {
  const auto deadline = Clock::now() + milliseconds(20000);
  for (;;) {
    auto c = qemu::QmpClient::Connect(socket, milliseconds(2000));
    if (c.ok() || Clock::now() > deadline || !qemu.Running()) return c;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// QEMU's background-snapshot on one RAM backend: accepted or QEMU's refusal; where accepted, one
// snapshot of the running guest. A file backend is filled to `fill_mib` with data first, so the
// snapshot copies that much.
Status QemuBackgroundSnapshot(const std::string& qemu_binary, const std::string& dir, uint64_t mib,
                              uint64_t fill_mib, const QemuCase& c) {
  const std::string ram = dir + "/ram-" + c.backend + (c.other_uid ? "-uid" : "");
  const std::string socket = ram + ".qmp";
  std::string object;
  std::vector<std::string> extra;
  if (c.backend == "ram") {
    // Anonymous RAM cannot be filled from outside: QEMU's generic loader copies a file of data
    // into guest RAM at reset, from 64 MiB up (below it the firmware lives).
    object = "memory-backend-ram,id=ram0,size=" + std::to_string(mib) + "M";
    const std::string data = ram + ".data";
    UniqueFd fd(::open(data.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    std::string chunk(1 << 20, '\x5a');
    for (uint64_t i = 64; fd.valid() && i < fill_mib; ++i) {
      if (::write(fd.get(), chunk.data(), chunk.size()) < 0) break;
    }
    extra = {"-device", "loader,file=" + data + ",addr=0x4000000,force-raw=on"};
  } else {
    UniqueFd fd(::open(ram.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid() || ::ftruncate(fd.get(), static_cast<off_t>(mib << 20)) != 0) {
      return Status::Unavailable("cannot make " + ram);
    }
    std::string chunk(1 << 20, '\x5a');
    for (uint64_t i = 0; i < fill_mib; ++i) {
      if (::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(i << 20)) < 0) break;
    }
    if (c.other_uid && ::fchown(fd.get(), kOtherUid, kOtherUid) != 0) {
      return Status::Unavailable("cannot chown " + ram);
    }
    object = "memory-backend-file,id=ram0,size=" + std::to_string(mib) + "M,mem-path=" + ram +
             ",share=" + (c.backend == "file-shared" ? "on" : "off");
  }
  SpawnOptions options;
  if (c.other_uid) options.run_as = Credentials{kOtherUid, kOtherUid, {}};
  std::vector<std::string> argv = {qemu_binary,
                                   "-machine",
                                   "q35,memory-backend=ram0",
                                   "-accel",
                                   "tcg",
                                   "-m",
                                   std::to_string(mib) + "M",
                                   "-object",
                                   object,
                                   "-nodefaults",
                                   "-display",
                                   "none",
                                   "-qmp",
                                   "unix:" + socket + ",server=on,wait=off",
                                   "-S"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  FERRY_ASSIGN_OR_RETURN(Process qemu, Process::Spawn(argv, ram + ".log", options));
  auto finish = [&](Status st) {
    qemu.Signal(SIGKILL);
    qemu.WaitExit(milliseconds(5000));
    ::unlink(ram.c_str());
    ::unlink((ram + ".data").c_str());
    ::unlink(socket.c_str());
    return st;
  };
  auto qmp = ConnectQmp(socket, qemu);
  if (!qmp.ok()) return finish(qmp.status().WithContext("QMP"));
  if (auto st = (*qmp)->Execute("cont"); !st.ok()) return finish(st.status());
  std::string refusal;
  const QemuSnapshotKind kind = ChooseQemuSnapshotKind(**qmp, &refusal);
  if (kind != QemuSnapshotKind::kBackground) {
    std::printf("qemu %s: background-snapshot refused: %s\n", c.label.c_str(), refusal.c_str());
    return finish(Status::Ok());
  }
  const std::string out = ram + ".snapshot";
  auto f = TakeQemuSnapshot(**qmp, kind, out, milliseconds(300000));
  ::unlink(out.c_str());
  if (!f.ok()) return finish(f.status().WithContext("background-snapshot of " + c.label));
  std::printf(
      "qemu %s: background-snapshot accepted; %lu MiB guest, %lu MiB of data: pause "
      "(STOP to RESUME) %.2f ms, query-migrate downtime %.0f ms, total %.0f ms, file "
      "%.0f MiB\n",
      c.label.c_str(), static_cast<unsigned long>(mib), static_cast<unsigned long>(fill_mib),
      f->pause_ms, f->downtime_ms, f->total_ms, static_cast<double>(f->file_bytes) / (1 << 20));
  return finish(Status::Ok());
}

int Main(int argc, char** argv) {
  CLI::App app{"uffd-wp-probe: can userfaultfd write-protect serve ferry's live snapshot?"};
  std::string qemu_binary = "qemu-system-x86_64";
  uint64_t max_mib = 4096;
  uint64_t qemu_mib = 1024;
  app.add_option("--qemu", qemu_binary, "QEMU binary")->capture_default_str();
  app.add_option("--max-mib", max_mib, "largest mapping write-protected (256, 1024, 4096)")
      ->capture_default_str();
  app.add_option("--qemu-mib", qemu_mib, "guest RAM of the QEMU cases")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "uffd-wp-probe: run it as root (it also tries as uid %u)\n", kOtherUid);
    return 1;
  }
  char tmpl[] = "/dev/shm/uffd-probe-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr || ::chmod(tmpl, 0777) != 0) {
    std::fprintf(stderr, "uffd-wp-probe: cannot make a directory in /dev/shm\n");
    return 1;
  }
  const std::string dir = tmpl;
  Kernel();
  Mappings(dir);
  for (uint64_t mib : {256, 1024, 4096}) {
    if (mib <= max_mib) WpCost(dir, mib);
  }
  const uint64_t fill = qemu_mib * 9 / 10;
  for (const QemuCase& c :
       {QemuCase{"memory-backend-file share=on (tmpfs), root", "file-shared"},
        QemuCase{"memory-backend-file share=on (tmpfs), uid 65534", "file-shared", true},
        QemuCase{"memory-backend-file share=off (tmpfs), root", "file-private"},
        QemuCase{"memory-backend-ram, root", "ram"}}) {
    if (Status st = QemuBackgroundSnapshot(qemu_binary, dir, qemu_mib, fill, c); !st.ok()) {
      std::printf("qemu %s: %s\n", c.label.c_str(), st.message().c_str());
    }
  }
  RemoveAll(dir);
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
