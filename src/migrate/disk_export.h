// The destination's half of a storage migration (migration_protocol.h, "A VM with a data disk").
//
// The incoming VM's QEMU waits with -incoming defer on a blank image of the disk's size. Before
// "prepared", ferryd binds a UNIX socket in the VM's own directory (under the state directory,
// which only ferryd can enter), hands it to QEMU (getfd) and makes QEMU's NBD server listen on
// it and export the disk node writable: no TCP port is ever opened. "prepared" carries a fresh
// random token. The source then opens a second link, which must come from the same host and
// present that token ("disk-link"); ferryd connects to the socket and relays the NBD traffic
// over the link (link_relay.h) until either end closes. Before the guest resumes here, the NBD
// server stops, which also ends the relay.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "migrate/migration_messages.h"
#include "migrate/nbd_turn.h"
#include "migrate/peer_link.h"
#include "vm/vm_runtime.h"

namespace ferry::migrate {

// Incoming disks waiting for their link, by migration id. Thread-safe.
class DiskExports {
 public:
  struct Waiting {
    std::string source_host;  // the host whose prepare it was: only it may join
    std::string token;        // raw kDiskTokenBytes
    std::string socket_path;  // QEMU's NBD server listens here
    std::shared_ptr<NbdTurn> turn;  // shared with the memory stream's pump (nbd_turn.h)
  };
  struct Claimed {
    std::string socket_path;
    std::shared_ptr<NbdTurn> turn;
  };

  void Add(const std::string& migration, Waiting waiting);
  void Remove(const std::string& migration);
  // The socket of migration `request.migration`, once: the entry is taken. NotFound (one
  // message for every mismatch: a prober learns nothing) unless the migration waits for a
  // disk, `host` is its source and the token matches.
  Result<Claimed> Claim(const DiskLinkRequest& request, const std::string& host);

 private:
  std::mutex mu_;
  std::map<std::string, Waiting> waiting_;  // guarded by mu_
};

// Exports the disk of the incoming VM `rt` over NBD on a new socket at `socket_path`; returns the
// token the source must present. The node is the one the guest's disk device uses.
Result<std::string> ExportIncomingDisk(vm::VmRuntime& rt, const std::string& socket_path);

// Serves a "disk-link" on `link` (its thread): connects to the claimed socket, says
// "disk-linked" and relays until either end closes, telling the claim's turn of each request.
Status ServeDiskLink(const std::shared_ptr<PeerLink>& link, const DiskExports::Claimed& claimed,
                     const std::string& what);

}  // namespace ferry::migrate
