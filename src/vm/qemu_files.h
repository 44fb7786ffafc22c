// The files one QEMU uses, handed over as descriptors. ferryd opens each (and binds QEMU's
// sockets) itself, in its own private directories, and QEMU inherits the descriptors: QEMU runs
// as a uid that cannot reach those directories, and no file is reopened by a path someone could
// swap after ferryd checked it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "qemu/launch_spec.h"
#include "vm/vm_runtime.h"

namespace ferry::vm {

struct QemuFilePaths {
  std::string kernel;
  std::string initrd;
  std::string qmp_socket;
  std::string guest_socket;
  std::string console_log;
  std::string tap;  // a tap interface ferryd made; "" for none
  // The data disk's top image and the images below it, nearest first; "" for no disk.
  std::string disk;
  std::vector<std::string> disk_chain;
  // Guest RAM that is not the VM's own: a snapshot's RAM image that QEMU maps copy-on-write.
  std::string shared_image;
  // A spare's RAM slot (launch_spec.h, LaunchSpec::ram_slot_fd): an empty directory, given to
  // the QEMU's uid; set instead of shared_image.
  std::string ram_slot_dir;
};

// Opens every file of `paths`, binds and listens on the sockets, and passes each in `start`,
// writing the number QEMU knows it by into `spec`. `ram`, when valid, is the VM's own RAM file
// (made by the caller), handed to the QEMU's uid. On failure nothing is passed and the error
// names the file.
Status OpenQemuFiles(const QemuFilePaths& paths, UniqueFd ram, qemu::LaunchSpec& spec,
                     QemuStart& start);

// Makes the snapshot RAM image open at `fd` (named `path` in errors) what the clones' QEMUs, one
// uid each, map copy-on-write: u=r (ferryd never writes it again, and its tmpfs accounting
// counts it as frozen), g=rw for their `group` (QEMU 7.2 opens a private mapping's file
// read-write; 8.2 falls back to read-only), nothing for others. Changes nothing, and so not the
// file's ctime, when it is so already.
Status ShareRamImageWithQemus(int fd, gid_t group, const std::string& path);

// A unix socket bound at `path` (a stale one there is removed) and listening.
Result<UniqueFd> ListenUnix(const std::string& path);

}  // namespace ferry::vm
