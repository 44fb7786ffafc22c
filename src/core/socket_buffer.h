// The send buffer of a local stream socket that a QEMU writes a migration stream into.
//
// After QEMU stops the guest it writes the last dirty pages and the device state (about 0.7 MiB
// for ferry's machine) in one burst. With the default buffer (208 KiB) that burst waits for the
// reader on our side, again and again, and every wait is the guest's downtime.
#pragma once

namespace ferry {

// Gives `fd` a send buffer of `bytes`: beyond the sysctl limit (net.core.wmem_max) when the
// process may (CAP_NET_ADMIN), else up to it. Best effort: returns the buffer the kernel now
// gives the socket (it doubles what it is asked for, for its bookkeeping), or -1.
int SetSendBuffer(int fd, int bytes);

}  // namespace ferry
