// TapDevice: the host end of a VM's NIC in tap networking. ferryd creates a persistent tap
// (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, TUNSETPERSIST), attaches it to the VM's bridge and brings
// it up before QEMU starts; ferryd then opens a queue of it (Open) and QEMU, which runs
// unprivileged and could not, inherits that descriptor (-netdev tap,fd=N). Because the tap
// is persistent it does not depend on ferryd: it lives as long as the VM's QEMU, across ferryd
// restarts, and ferryd removes it when the QEMU has ended (stop, delete, failure).
//
// Everything goes through ioctl on /dev/net/tun and rtnetlink, in the calling thread's network
// namespace; no program is spawned. Needs CAP_NET_ADMIN.
//
// A TapDevice is a name and a bridge, not a handle: it owns nothing, and destroying it leaves
// the interface as it is. Thread-safe (each call opens its own descriptors).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace ferry::vm {

// A tun or tap interface as the kernel lists it.
struct TunLink {
  std::string name;
  std::string alias;  // IFLA_IFALIAS ("" for none), see TapDevice::Create
};

class TapDevice {
 public:
  TapDevice(std::string name, std::string bridge)
      : name_(std::move(name)), bridge_(std::move(bridge)) {}

  // The tap of the VM with id `vm_id`: "fy" and 8 characters derived from the id (10 bytes, so
  // it fits IFNAMSIZ), the same every time, so a restarted ferryd finds it again.
  static TapDevice ForVm(const std::string& vm_id, const std::string& bridge);
  static std::string NameFor(const std::string& vm_id);

  // Ok if `bridge` exists in this network namespace, is a Linux bridge and is up; else
  // FailedPrecondition naming the bridge and what to do.
  static Status CheckBridge(const std::string& bridge);

  // Creates the tap, attaches it to the bridge (with the bridge's MTU) and brings it up, with
  // `alias` as its interface alias (`ip link` shows it; "" for none): ferryd writes there whose
  // tap it is (tap_sweep.h), since the name alone does not say which ferryd made it.
  // AlreadyExists if an interface of this name exists (it is left alone). On any other failure
  // nothing is left behind.
  // With on_bridge false (a clone that still has its parent's identity), the tap is made up but
  // on no bridge: what its QEMU sends goes nowhere until AttachToBridge.
  Status Create(const std::string& alias = "", bool on_bridge = true) const;
  // Attaches the existing tap to its bridge. NotFound if the tap does not exist.
  Status AttachToBridge() const;
  // The tap's own (host-side) MAC: 0xfe then five bytes from its name, so the bridge never takes
  // it as its own address (see Create).
  std::array<uint8_t, 6> PortMac() const;
  // A descriptor of the existing tap's queue, for QEMU to inherit. NotFound if it does not exist.
  Result<UniqueFd> Open() const;
  // Deletes the interface. Ok if it does not exist. Works while a QEMU still holds it open.
  Status Remove() const;
  bool Exists() const;
  // The name of the bridge the interface is attached to ("" when none). NotFound if there is no
  // such interface.
  Result<std::string> AttachedBridge() const;

  // Every tun and tap interface (link kind "tun") of this network namespace, whoever made it.
  static std::vector<TunLink> ListTunLinks();

  const std::string& name() const { return name_; }
  const std::string& bridge() const { return bridge_; }

 private:
  std::string name_;
  std::string bridge_;
};

}  // namespace ferry::vm
