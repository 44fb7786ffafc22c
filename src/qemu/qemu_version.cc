#include "qemu/qemu_version.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "core/files.h"
#include "core/process.h"

namespace ferry::qemu {

namespace {

constexpr std::string_view kPrefix = "QEMU emulator version ";
constexpr int kMaxPart = 1000;

// One decimal part of "X.Y.Z" at `pos`, which ends past it. -1 when there is none.
int ReadPart(std::string_view s, size_t& pos) {
  int value = 0;
  size_t start = pos;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 4) {
    value = value * 10 + (s[pos] - '0');
    ++pos;
  }
  if (pos == start || value > kMaxPart) return -1;
  return value;
}

}  // namespace

std::string QemuVersion::ToString() const {
  if (!known()) return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro);
}

Result<QemuVersion> ParseQemuVersion(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  auto refuse = [&] {
    return Status::InvalidArgument("not QEMU's --version output: \"" +
                                   std::string(line.substr(0, 80)) + "\"");
  };
  if (line.substr(0, kPrefix.size()) != kPrefix) return refuse();
  size_t pos = kPrefix.size();
  QemuVersion v;
  int* parts[] = {&v.major, &v.minor, &v.micro};
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (pos >= line.size() || line[pos] != '.') return refuse();
      ++pos;
    }
    *parts[i] = ReadPart(line, pos);
    if (*parts[i] < 0) return refuse();
  }
  // What follows the number is a suffix in parentheses, or nothing.
  if (pos < line.size() && line[pos] != ' ') return refuse();
  if (v.major == 0) return refuse();
  return v;
}

Result<std::string> QemuVersionLine(const std::string& binary, const std::string& scratch_dir) {
  const std::string out = scratch_dir + "/qemu-version-" + std::to_string(::getpid()) + ".txt";
  ::unlink(out.c_str());
  auto p = Process::Spawn({binary, "--version"}, out);
  if (!p.ok()) return p.status().WithContext("running " + binary + " --version");
  auto exit = p->WaitExit(std::chrono::milliseconds(10000));
  if (!exit) {
    p->Signal(SIGKILL);
    p->WaitExit(std::chrono::milliseconds(5000));
    ::unlink(out.c_str());
    return Status::DeadlineExceeded(binary + " --version did not finish within 10 s");
  }
  auto text = ReadFile(out);
  ::unlink(out.c_str());
  if (!exit->known || exit->signaled || exit->code != 0) {
    return Status::FailedPrecondition(binary + " --version " + exit->Describe());
  }
  if (!text.ok()) return text.status().WithContext(binary + " --version");
  return text->substr(0, text->find('\n'));
}

Result<QemuVersion> ProbeQemuVersion(const std::string& binary, const std::string& scratch_dir) {
  FERRY_ASSIGN_OR_RETURN(const std::string line, QemuVersionLine(binary, scratch_dir));
  auto v = ParseQemuVersion(line);
  if (!v.ok()) return v.status().WithContext(binary);
  return v;
}

}  // namespace ferry::qemu
