// QEMU's own TLS on a storage migration's NBD connection (migration_protocol.h, "A VM with a data
// disk").
//
// The disk's bytes go from the source's QEMU to the destination's over the disk link's TCP
// connection without passing through ferryd's memory: the two agents open that link with their
// mutual certificate TLS, check the token of "prepared" on it, end their TLS in step
// (PeerLink::HandOverSocket) and give the connection to QEMU, whose NBD client and server then
// speak TLS 1.3 keyed with a pre-shared key (QEMU's tls-creds-psk). Why: relayed through ferryd,
// every byte of the disk was read, encrypted, written, read, decrypted and written again by
// ferryd on a host whose guest already keeps one CPU busy; the copy took 1.5x as long as QEMU's
// own TLS (bench/README.md, issue 13).
//
// The key: HMAC-SHA256 of the disk token (32 random bytes from the destination's "prepared",
// only ever sent inside the agents' TLS) under a label of its own: fresh per migration and known
// to the two agents only. QEMU's TLS priority for a pre-shared key puts ECDHE-PSK first: an
// ephemeral exchange on top of the key.
//
// QEMU reads the key from a file by path and runs as a uid that cannot enter ferryd's
// directories. So ferryd writes keys.psk into a directory of the VM's own (0500 / 0400, owned by
// that QEMU's uid), hands QEMU the directory's descriptor (add-fd) and names it
// "/proc/self/fd/N": that QEMU and root can read the key, no other QEMU and no user. The client
// reads the key once, when its object is made, and its directory goes at once; the server looks
// it up at each handshake, and its directory goes when the export stops (or with the VM's).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "vm/vm_runtime.h"

namespace ferry::migrate {

// The tls-creds-psk object's id, at both ends.
inline constexpr const char* kNbdTlsCredsId = "ferry-nbd-tls";

// The pre-shared key both agents derive from the disk token (32 bytes).
Result<std::string> NbdTlsKey(std::string_view token);

// Where a QEMU reads its key from; see above.
struct NbdTlsKeyDir {
  std::string dir;
  int64_t fdset = -1;  // QEMU's descriptor of `dir`
};

// Makes the tls-creds-psk object kNbdTlsCredsId in `rt`'s QEMU (`server`: the destination's NBD
// server; else the source's client), keyed with `key`, through a new key directory at `dir`.
// An object of that id left by an earlier attempt is replaced.
Result<NbdTlsKeyDir> AddNbdTlsCreds(vm::VmRuntime& rt, bool server, std::string_view key,
                                    const std::string& dir);

// Removes the key directory and QEMU's descriptor of it (best effort; the object stays).
void DropNbdTlsKeyDir(vm::VmRuntime& rt, const NbdTlsKeyDir& keys);

// DropNbdTlsKeyDir, then deletes the object (best effort): once nothing uses it.
void RemoveNbdTlsCreds(vm::VmRuntime& rt, const NbdTlsKeyDir& keys);

}  // namespace ferry::migrate
