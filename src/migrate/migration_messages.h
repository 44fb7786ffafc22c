// The control messages of a live migration (migration_protocol.h), typed. Every message a peer
// sends is parsed here, once, where it enters: size and nesting depth are bounded before any JSON
// is built, every member is type-checked and size-limited, and a member this version does not
// know is refused. Code behind this file reads only these structs, never the peer's JSON.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/guid.h"
#include "core/mac_address.h"
#include "core/status.h"
#include "migrate/peer_link.h"
#include "vm/vm_spec.h"

namespace ferry::migrate {

// A control message's bytes: the largest legitimate one is a prepare with a policy document
// (crypto::kMaxPolicyBytes) and a VM spec.
inline constexpr size_t kMaxMessageBytes = 256 * 1024;
// Nesting of objects and arrays; a prepare needs 4 ({spec:{network:{forwards:[{...}]}}}).
inline constexpr int kMaxMessageDepth = 8;
inline constexpr size_t kMaxErrorChars = 4096;
inline constexpr size_t kMaxMigrationIdChars = 64;
inline constexpr size_t kOwnerFingerprintChars = 64;

// S -> D: the VM to receive. The destination decides the rest itself (migration_destination.cc).
struct PrepareRequest {
  std::string migration;        // the source's operation id
  vm::VmSpec spec;              // incl. the owner's signed policy, "" if the VM has none
  MacAddress mac;               // the guest NIC keeps its MAC
  std::optional<Guid> vmgenid;  // the guest keeps its generation; unset when S could not read it
  // The owner (hex SHA-256 of the Ed25519 key) the VM was pinned to at creation: present exactly
  // when spec.policy is, so the destination sees a policy that was swapped or stripped.
  std::string owner;
  // A VM with a data disk: the bytes its images take on the source (an upper bound of what the
  // copy takes on the destination), checked against the destination's free space before
  // anything is sent. Present exactly when spec.disk_mib is not 0.
  std::optional<uint64_t> disk_bytes;
  // The machine type the VM's QEMU runs ("pc-q35-7.2", qemu/machine_type.h): the destination's
  // QEMU loads only its own. Empty when the source could not ask its QEMU.
  std::string machine_type = {};
};
// A disk migration's second link (disk_export.h) proves it belongs to this migration with
// `disk_token`: kDiskTokenBytes random bytes, hex on the wire. Set exactly when the prepare
// carried a disk.
inline constexpr size_t kDiskTokenBytes = 32;
struct PreparedReply {
  std::optional<std::string> disk_token;  // raw bytes
};
struct ReceivedReply {};
struct FinishRequest {};
struct FinishedReply {};
struct FailedReply {
  std::string error;
};
struct AbortRequest {
  std::string error;
};
struct QueryRequest {
  std::string migration;
  std::string vm;
};
// "held" answers a hold-query: the hold is durable on the destination.
enum class SettledState { kRunning, kAbsent, kUnsettled, kHeld };
struct StateReply {
  SettledState state = SettledState::kUnsettled;
};

// Sending a hold (migration_protocol.h). Limits: a manifest lists at most kMaxHoldChunks chunks
// and is at most kMaxHoldManifestBytes; keys are 32 bytes.
inline constexpr uint64_t kMaxHoldManifestBytes = 64u << 20;
inline constexpr uint64_t kMaxHoldChunks = uint64_t{1} << 24;
inline constexpr size_t kHoldKeyBytes = 32;
// S -> D: the hold to receive; `manifest_bytes` of manifest follow as data.
struct HoldPrepareRequest {
  std::string migration;  // the sender's operation id
  std::string vm;         // the held VM's name
  std::string owner;      // 64 hex, or "" for a VM without a policy
  uint64_t manifest_bytes = 0;
  std::string data_key;                     // 32 raw bytes (hex on the wire)
  std::optional<std::string> owner_secret;  // 32 raw bytes when the sender has one
  // Set for `ferry snapshot send`: the transfer copies snapshot NAME (of VM `vm`), which the
  // receiver materialises as a snapshot; unset for a hold (which moves).
  std::optional<std::string> snapshot;
  ~HoldPrepareRequest();  // wipes the keys
};
// D -> S: `chunks` chunk ids (32 bytes each) follow as data.
struct HoldPreparedReply {
  uint64_t chunks = 0;
};
struct HoldQueryRequest {
  std::string migration;
  std::string vm;
};

// Storage migration (migration_protocol.h). S -> D, the first message of a second link: it
// carries the disk's NBD traffic of migration `migration`.
struct DiskLinkRequest {
  std::string migration;
  std::string token;  // raw kDiskTokenBytes, from the destination's "prepared"
};
struct DiskLinkedReply {};   // D -> S: the link is joined to the VM's NBD export
struct DiskReadyRequest {};  // S -> D: the disk copy is in step; the memory stream follows

using PeerMessage = std::variant<PrepareRequest, PreparedReply, ReceivedReply, FinishRequest,
                                 FinishedReply, FailedReply, AbortRequest, QueryRequest, StateReply,
                                 HoldPrepareRequest, HoldPreparedReply, HoldQueryRequest,
                                 DiskLinkRequest, DiskLinkedReply, DiskReadyRequest>;

// A control frame's payload -> a message. Refuses (Corruption or InvalidArgument, saying what and
// where) more than kMaxMessageBytes, deeper than kMaxMessageDepth, anything but one JSON object,
// an unknown "type", a member of the wrong type or size, an unknown member.
Result<PeerMessage> ParsePeerMessage(std::string_view bytes);
// The same on an already parsed object. REQUIRES: `message` is no deeper than kMaxMessageDepth
// (it came from the bytes-level parser, or from this process).
Result<PeerMessage> ParsePeerObject(const nlohmann::json& message);

nlohmann::json MessageJson(const PeerMessage& message);
// "prepare", "failed", ...
const char* MessageType(const PeerMessage& message);
std::string_view SettledStateName(SettledState state);

// `error` cut to kMaxErrorChars, as the parser accepts it.
FailedReply FailedBecause(const std::string& error);
AbortRequest AbortBecause(const std::string& error);

// Sends / receives one message on `link`. A frame that is not a control frame is a protocol
// violation and ends the link; a control frame that does not parse is refused (the link stays
// open, so the caller can say "failed").
Status SendPeerMessage(PeerLink& link, const PeerMessage& message);
Result<PeerMessage> ReceivePeerMessage(PeerLink& link, std::chrono::milliseconds timeout);

// Waits for a message of type T. "failed" or "abort" from the peer becomes Unavailable with the
// peer's reason; any other type is Corruption. `what` names the wait in errors ("the
// destination's prepared").
template <typename T>
Result<T> ExpectPeerMessage(PeerLink& link, std::chrono::milliseconds timeout,
                            const std::string& what) {
  auto message = ReceivePeerMessage(link, timeout);
  if (!message.ok()) return message.status().WithContext("waiting for " + what);
  if (auto* got = std::get_if<T>(&*message)) return std::move(*got);
  if (auto* failed = std::get_if<FailedReply>(&*message)) {
    return Status::Unavailable("the peer failed: " + failed->error);
  }
  if (auto* abort = std::get_if<AbortRequest>(&*message)) {
    return Status::Unavailable("the peer gave up: " + abort->error);
  }
  return Status::Corruption(std::string("the peer sent \"") + MessageType(*message) +
                            "\" while waiting for " + what);
}

}  // namespace ferry::migrate
