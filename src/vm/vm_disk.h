// A VM's data disk: qcow2 images made with qemu-img. A new VM gets a blank image; a snapshot
// freezes the image the VM writes and puts a new overlay on top of it; a clone gets its own
// overlay on its snapshot's frozen image. Frozen images are never written again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::vm {

// qemu-img beside the QEMU binary when that is a path, else qemu-img from PATH.
std::string QemuImgFor(const std::string& qemu_binary);

// A blank qcow2 image of `mib` MiB at `path` (which must not exist).
Status CreateBlankDisk(const std::string& qemu_img, const std::string& path, uint64_t mib);
// A qcow2 overlay at `path` whose reads fall through to `backing` (an absolute path).
Status CreateOverlay(const std::string& qemu_img, const std::string& path,
                     const std::string& backing);
// The backing file a qcow2 image names in its header ("" for none), read without qemu-img.
// Corruption if `path` is not a qcow2 image or its header is out of bounds.
Result<std::string> Qcow2BackingFile(const std::string& path);

// A VM's disk as ferry made it, checked before it is copied to another host: `top` and each of
// `chain` (nearest first) a qcow2 image whose header names no backing file but the next one of
// the chain (ferry hands QEMU the chain explicitly, so a header may name none), the last naming
// none. Returns the bytes the images take on disk, an upper bound of what a copy takes.
// FailedPrecondition naming the image when the chain is not one ferry made.
Result<uint64_t> CheckedDiskChainBytes(const std::string& top,
                                       const std::vector<std::string>& chain);

}  // namespace ferry::vm
