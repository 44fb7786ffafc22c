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

}  // namespace ferry::migrate
