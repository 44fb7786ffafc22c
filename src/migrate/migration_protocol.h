// The live-migration protocol between two ferryd agents, as control messages on a PeerLink (see
// peer_link.h for the frames and TLS). Phases follow libvirt's v3 protocol (DESIGN.md
// "Migration protocol"); every control message is a JSON object with a "type".
//
//   source (S)                                   destination (D)
//   Begin:   load the VM's owner policy; connect (mutual TLS); check the policy allows D's
//            certificate identity -- refused here, not a byte of the VM has left.
//   S -> D   {"type":"prepare","migration":ID,"spec":{VmSpec incl. policy},"mac":M,"vmgenid":G}
//   Prepare: D checks the policy again itself (it does not trust S), reserves the name, makes
//            an agent-owned RAM file, starts QEMU with -incoming and has it listen.
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
// refusal, a timeout, a cancel) makes S cancel or resume its copy and D kill its own. After
// "finish" S never resumes by itself: if "finished" does not come, the outcome is unknown to S
// and its copy stays paused, saying so, for an operator to decide.
#pragma once

namespace ferry::migrate {

inline constexpr const char* kMsgPrepare = "prepare";
inline constexpr const char* kMsgPrepared = "prepared";
inline constexpr const char* kMsgReceived = "received";
inline constexpr const char* kMsgFinish = "finish";
inline constexpr const char* kMsgFinished = "finished";
inline constexpr const char* kMsgFailed = "failed";
inline constexpr const char* kMsgAbort = "abort";

}  // namespace ferry::migrate
