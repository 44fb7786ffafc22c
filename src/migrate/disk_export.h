// The destination's half of a storage migration (migration_protocol.h, "A VM with a data disk").
//
// The incoming VM's QEMU waits with -incoming defer on a blank image of the disk's size. Before
// "prepared", ferryd binds a UNIX socket in the VM's own directory (under the state directory,
// which only ferryd can enter), hands it to QEMU (getfd) and makes QEMU's NBD server listen on
// it, TLS required with a key derived from a fresh random token (nbd_tls.h), and export the disk
// node writable: no TCP port is ever opened. "prepared" carries the token. The source then opens
// a second link, which must come from the same host and present that token ("disk-link");
// ferryd connects to the socket, says "disk-linked", ends the link's TLS in step with the source
// (PeerLink::HandOverSocket) and splices the connection to the socket (socket_relay.h) until
// either end closes: from there the NBD traffic is QEMU's, under QEMU's TLS. Before the guest
// resumes here, the NBD server stops, which also ends the relay.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "migrate/migration_messages.h"
#include "migrate/nbd_tls.h"
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

struct IncomingDiskExport {
  std::string token;  // raw kDiskTokenBytes: what the source must present
  NbdTlsKeyDir keys;  // the NBD server's TLS key (nbd_tls.h)
};

// Exports the disk of the incoming VM `rt` over NBD on a new socket at `socket_path`, with the
// server's TLS key in a new directory `key_dir`. The node is the one the guest's disk device
// uses.
Result<IncomingDiskExport> ExportIncomingDisk(vm::VmRuntime& rt, const std::string& socket_path,
                                              const std::string& key_dir);
// Stops the NBD server (which ends the relay) and removes its TLS key and object.
Status EndIncomingDiskExport(vm::VmRuntime& rt, const NbdTlsKeyDir& keys);

// Serves a "disk-link" on `link` (its thread): connects to the claimed socket, says
// "disk-linked" and relays until either end closes, telling the claim's turn of each request.
Status ServeDiskLink(const std::shared_ptr<PeerLink>& link, const DiskExports::Claimed& claimed,
                     const std::string& what);

}  // namespace ferry::migrate
