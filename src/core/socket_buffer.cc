#include "core/socket_buffer.h"

#include <sys/socket.h>

namespace ferry {

int SetSendBuffer(int fd, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
  int now = 0;
  socklen_t len = sizeof now;
  if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &len) != 0) return -1;
  return now;
}

}  // namespace ferry
