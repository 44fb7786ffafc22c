// The live-migration protocol between two ferryd agents, as control messages on a PeerLink (see
// peer_link.h for the frames and TLS). Phases follow libvirt's v3 protocol (DESIGN.md
// "Migration protocol"); every control message is a JSON object with a "type".
//
//   source (S)                                   destination (D)
//   Begin:   load the VM's owner policy; connect (mutual TLS); check the policy allows D's
//            certificate identity -- refused here, not a byte of the VM has left.
//   S -> D   {"type":"prepare","migration":ID,"spec":{VmSpec incl. policy},"mac":M,"vmgenid":G,
//             "owner":FINGERPRINT}   (owner: the key the VM was pinned to; present iff a policy is)
//   Prepare: D checks the policy again itself (it does not trust S) and the request against its
//            own configuration (bridges, owners, no disk; it picks host ports itself), reserves
//            the name, makes an agent-owned RAM file, starts QEMU with -incoming and has it
//            listen. Every message is parsed and typed in migration_messages.h.
//   D -> S   {"type":"prepared"}           or {"type":"failed","error":"..."}
//   Perform: S's QEMU precopies into S's ferryd, which sends the bytes as data frames, then a
//            stream-end frame; D's ferryd writes them into its QEMU.
//   D -> S   {"type":"received"}           (D's QEMU loaded the whole state; still paused)
//   S -> D   {"type":"finish"}             (S will not resume its copy from here on)
//   Finish:  D resumes the guest.
//   D -> S   {"type":"finished"}           or {"type":"failed","error":"..."}
//   Confirm: S destroys its copy.
//   Either side may send {"type":"abort","error":"..."} before "finish"; both roll back.
//
// A VM with a data disk (disk_export.h, disk_mirror.h; docs/migration.md "Disks"):
//   S -> D   the prepare carries "disk_bytes":N (what its images take on S); D refuses without
//            room, makes a blank image, exports it from its waiting QEMU over NBD on a UNIX
//            socket it handed QEMU, and answers {"type":"prepared","disk_token":HEX32}.
//   Perform: S opens a second link and sends {"type":"disk-link","migration":ID,"token":HEX32};
//            D checks it comes from the same host with that token (once), answers
//            {"type":"disk-linked"}; both end that link's TLS in step (close_notify each way,
//            PeerLink::HandOverSocket) and give its TCP connection to QEMU's NBD client (S) and,
//            spliced, to QEMU's NBD server (D), which speak TLS 1.3 with a key both derive from
//            the token (nbd_tls.h) until either end closes. S mirrors the disk into it
//            (write-blocking) until in step, then sends
//            {"type":"disk-ready"} on the first link; the memory stream follows as above, and S
//            ends the mirror in step while its QEMU waits before the last pass.
//   D stops its NBD server once the stream is loaded, before "received".
//
// State machine and the invariant (exactly one copy runs): S's guest stops only when QEMU's
// precopy completes; until S sends "finish", any failure (link cut, D's QEMU or ferryd dying, a
// refusal, a timeout, a cancel) makes S cancel or resume its copy and D kill its own. Once D
// resumed the guest it keeps it, whether or not "finished" reaches S. After "finish" S never
// resumes by itself: if "finished" does not come, S asks D on a new link --
//
//   S -> D   {"type":"query","migration":ID,"vm":NAME}
//   D -> S   {"type":"state","state":"running"|"absent"|"unsettled"}
//
// D answers once its own handling of ID has ended: "running" (the guest runs on D: S deletes
// its copy), "absent" (D holds no copy and will not start one: S resumes its own). Until D
// answers, S's copy stays paused and S keeps asking.
//
// Recovery after a restart (both sides journal in their registry): S records each outgoing
// migration ("migration-out": vm, peer, phase perform|finish) before QEMU starts sending and
// removes it when settled. S restarting in "perform" cancels QEMU's migration and resumes its
// copy (D drops its own when the link breaks); in "finish" it asks D as above. D restarting
// drops any incoming VM that is not running yet and keeps one it had already resumed.
//
// Sending a hold (`ferry hold send`, src/hold/hold_send.cc): the same phases and the same
// confirmation, with the hold's own first messages. The data stream carries the hold:
//
//   Begin:   S loads the hold's owner policy and checks D's certificate identity against it --
//            refused here, nothing of the hold has left (not even its manifest).
//   S -> D   {"type":"hold-prepare","migration":ID,"vm":NAME,"owner":FINGERPRINT,
//             "manifest_bytes":N,"data_key":HEX,"owner_secret":HEX}   then N bytes of data: the
//            manifest as S signed it. The data key and the owner's dedup secret travel only here,
//            inside TLS; D's store re-wraps them under D's own key.
//   Prepare: D checks the sender's signature, the policy itself (as for a live migration:
//            owner pin, accepted owners, bridges, the migration rule for D's certificate), that
//            it has no VM and no hold of that name, journals "receiving" and opens the import.
//   D -> S   {"type":"hold-prepared","chunks":K}   then K*32 bytes of data: the chunk ids D
//            lacks (only those travel)            or {"type":"failed","error":"..."}
//   Perform: S sends each wanted chunk as data, [32-byte id][u32 LE length][sealed chunk as
//            stored], then stream-end. D checks each against the hold's table, then syncs and
//            commits the manifest (re-wrapped, signed by D, state "received").
//   D -> S   {"type":"received"}
//   S -> D   {"type":"finish"}     (journaled first: S will not keep its hold by itself now)
//   Finish:  D records the transfer ("hold-in" registry object), then marks its hold durable.
//   D -> S   {"type":"finished"}
//   Confirm: S shreds its hold.
//   S -> D   {"type":"hold-query","migration":ID,"vm":NAME}
//   D -> S   {"type":"state","state":"held"|"absent"|"unsettled"}   as "query" above: S shreds
//            its copy on "held", keeps it on "absent", asks again otherwise.
// D restarting in "receiving" drops its copy unless the transfer was recorded (then finishes
// it); S restarting before "finish" keeps its hold, after it asks D.
//
// Sending a snapshot (`ferry snapshot send`, src/hold/snapshot_send.cc): the same "hold-prepare"
// with "snapshot":NAME (and "vm" the VM it was taken of), the same chunk exchange, for a store
// object of kind "snapshot". It is a copy, so it ends at "received": D commits the object,
// writes out and verifies the snapshot's files and registers it before it answers; there is no
// "finish", no journal and nothing to settle. Any failure leaves D without the snapshot and S
// with its own.
#pragma once

namespace ferry::migrate {

inline constexpr const char* kMsgPrepare = "prepare";
inline constexpr const char* kMsgPrepared = "prepared";
inline constexpr const char* kMsgReceived = "received";
inline constexpr const char* kMsgFinish = "finish";
inline constexpr const char* kMsgFinished = "finished";
inline constexpr const char* kMsgFailed = "failed";
inline constexpr const char* kMsgAbort = "abort";
inline constexpr const char* kMsgQuery = "query";
inline constexpr const char* kMsgState = "state";
inline constexpr const char* kMsgHoldPrepare = "hold-prepare";
inline constexpr const char* kMsgHoldPrepared = "hold-prepared";
inline constexpr const char* kMsgHoldQuery = "hold-query";
inline constexpr const char* kMsgDiskLink = "disk-link";
inline constexpr const char* kMsgDiskLinked = "disk-linked";
inline constexpr const char* kMsgDiskReady = "disk-ready";

}  // namespace ferry::migrate
