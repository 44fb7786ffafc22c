#include "guest/console.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace ferry::guest {

void ConsoleWrite(std::string_view text) {
  // Opened once and kept: the console does not go away. Only as the guest's init: run by hand
  // on a host, the host's console is not ours to write to.
  static const int fd = [] {
    if (getpid() != 1) return STDERR_FILENO;
    int f = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    return f >= 0 ? f : STDERR_FILENO;
  }();
  std::string line(text);
  line.push_back('\n');
  // Best effort: there is nowhere else to report a failed console write.
  ssize_t ignored = write(fd, line.data(), line.size());
  (void)ignored;
}

void ConsoleLine(std::string_view message) {
  std::string line = "ferry-guest: ";
  line.append(message);
  ConsoleWrite(line);
}

}  // namespace ferry::guest
