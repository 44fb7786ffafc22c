// PeerLink: one established, authenticated connection between two ferryd agents, carrying framed
// messages and data over TLS 1.3 (see migrate/peer_tls.h for what the TLS layer enforces).
//
// Establishing a link
//   1. The client opens TCP to the server's peer port; both run the TLS 1.3 handshake with mutual
//      certificate authentication against the fleet CA. Each side reads the other's host id and
//      labels from the other's certificate. A client that names the host it wants refuses a
//      server whose certificate carries another id.
//   2. In TLS 1.3 the client finishes its handshake before the server has checked the client's
//      certificate. So the server, once it has accepted the client, sends one `accept` frame
//      first; the client's connect returns only after it has read that frame. A refused client
//      reads the server's TLS alert instead and reports it. The server hands the link to its
//      handler after sending `accept`. A server that has authenticated the client but cannot take
//      another link (too many open) sends {"refused": "why"} as the accept frame's payload and
//      closes; the client reports that reason.
//   3. From then on both sides may send any frames in any order; the protocol above (migration
//      phases, see DESIGN.md "Migration protocol") decides who sends what.
//
// Frames (all integers little-endian), inside the TLS byte stream:
//
//   offset size  field
//   0      4     magic "FRYM"
//   4      1     version major (1): a reader refuses a newer major ("upgrade this agent")
//   5      1     version minor (0): additive changes only; a reader accepts any minor
//   6      1     type: 1 control, 2 data, 3 stream-end, 4 accept; a reader refuses others
//   7      1     flags: none defined; sent as 0, ignored when read
//   8      4     payload length in bytes, at most 16 MiB (kMaxFramePayloadBytes); larger is refused
//   12     4     CRC-32C (Castagnoli) of bytes 0..11 followed by the payload
//   16     n     payload
//
//   control     one JSON object (UTF-8): a protocol message
//   data        the next bytes of the one data stream of the link (e.g. QEMU's migration stream);
//               SendData splits large writes, so frame boundaries carry no meaning
//   stream-end  no payload: the data stream is complete
//   accept      a JSON object ({}, or {"refused": "why"}); sent once, by the server, first
//
// TLS already authenticates every record, so the CRC is not the integrity guarantee on the wire:
// it catches bugs in our own framing and keeps frames self-checking like every other ferry
// format. Any failed check (bad magic, CRC, version, length, unexpected frame type, TLS record
// that fails its MAC) ends the link: a byte stream out of step cannot be resynchronized.
//
// Threads: a PeerLink is used by at most one sending and one receiving thread at a time in the
// intended design, but every method is safe to call from any thread: sends are serialized (frames
// of concurrent senders never interleave), receives are serialized, and a send and a receive run
// concurrently. Close() may be called from any thread at any time and unblocks both.
//
// How that is made safe: an OpenSSL SSL object may not be used by two threads at once, not even
// one reading and one writing. The socket is non-blocking and every SSL_* call on the link is made
// under one mutex (ssl_mu_), which is held only for the duration of that call: a call never
// blocks, it returns WANT_READ / WANT_WRITE, and the thread then releases the mutex and waits in
// poll() for its own direction of the socket. So a receiver waiting for data never holds up a
// sender, and the other way round. Close() and any fatal error shut the socket down, which wakes
// every poll() on it at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"
#include "crypto/host_identity.h"
#include "migrate/peer_frame.h"
#include "migrate/peer_tls.h"

namespace ferry::migrate {

class PeerLink {
 public:
  // Wire and payload volume since the link was created. Wire bytes are what crossed the socket,
  // including the TLS handshake, TLS record overhead and frame headers.
  struct Counters {
    uint64_t wire_bytes_sent = 0;
    uint64_t wire_bytes_received = 0;
    uint64_t payload_bytes_sent = 0;      // frame payloads, all types
    uint64_t payload_bytes_received = 0;  // frame payloads, all types
    uint64_t frames_sent = 0;
    uint64_t frames_received = 0;
  };

  // The largest data frame SendData writes; bigger writes are split.
  static constexpr size_t kDataFrameBytes = 1 << 20;
  static constexpr std::chrono::milliseconds kDefaultSendTimeout{60'000};

  // Runs the handshake on `fd` (a connected TCP socket, non-blocking) and the accept step (see
  // above) within `deadline`. On success the link owns `fd`; on failure the caller still owns it
  // and closes it. `remote` is the peer's address ("10.0.0.2:7700"), for descriptions and errors.
  // A server passing a non-empty `refusal` sends it in the accept frame and fails
  // (ResourceExhausted) instead of establishing the link.
  static Result<std::unique_ptr<PeerLink>> Establish(int fd, const PeerTlsContext& context,
                                                     PeerRole role,
                                                     const std::string& expected_host_id,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     const std::string& remote,
                                                     const std::string& refusal = "");

  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;
  // Closes the link. REQUIRES: no other thread is using it.
  ~PeerLink();

  // Send one control message (a JSON object) / data / the end of the data stream. Each blocks
  // until its frames are handed to the kernel, at most the send timeout (the peer stopped
  // reading): then, or on any other failure, the link ends (a half-sent frame cannot be taken
  // back) and every later call returns the same error.
  Status SendMessage(const nlohmann::json& message);
  // A control frame with these bytes as they are, unchecked: the receiver parses them (tests send
  // crafted messages this way).
  Status SendControlBytes(std::string_view text);
  Status SendData(const void* data, size_t size);
  Status SendStreamEnd();

  // Waits up to `timeout` for the next frame of any type but `accept`. DeadlineExceeded leaves
  // the link intact (a partly received frame is kept for the next call); any other error ends it.
  // When the peer closes the link, Unavailable.
  Result<Frame> Receive(std::chrono::milliseconds timeout);
  // Receive() for a control frame, parsed. Any other frame type here is a protocol violation and
  // ends the link (Corruption), as does a payload that is not a JSON object.
  Result<nlohmann::json> ReceiveMessage(std::chrono::milliseconds timeout);

  // Ends TLS on the link in step with the peer and gives the caller its TCP connection, for a
  // protocol that secures its own bytes from here on (a disk's NBD under QEMU's TLS, nbd_tls.h).
  // Both sides call it after their last frame: each sends close_notify and reads the other's.
  // A frame, or any byte, that arrives before the peer's close_notify fails it (Corruption) and
  // ends the link. Afterwards the link is ended and the returned socket (blocking) is the
  // caller's alone; no byte of the peer's after its close_notify has been read.
  Result<UniqueFd> HandOverSocket(std::chrono::milliseconds timeout);

  // Ends the link: sends TLS close_notify when that cannot block, then shuts the socket down,
  // which makes Send*/Receive* blocked in other threads return Unavailable at once. Idempotent,
  // thread-safe. It does not wait for the peer to read what was sent; a protocol that must know
  // its last frame arrived waits for the peer's reply first.
  void Close();

  // False once the link has ended for any reason.
  bool open() const { return !ended_.load(); }
  // Why the link ended; OK while it is open.
  Status end_status() const;

  // The other host, as its certificate says.
  const crypto::HostIdentity& peer() const { return peer_; }
  // That certificate (verified against the fleet CA in the handshake); owned by the link, valid
  // while it lives. A sent hold's manifest is checked against it.
  X509* peer_certificate() const;
  // "link to host-b (10.0.0.2:7700)" or "link from host-a (10.0.0.1:53122)".
  const std::string& description() const { return description_; }
  Counters counters() const;

  // How long one Send* may wait for the peer to read. Default kDefaultSendTimeout.
  void SetSendTimeout(std::chrono::milliseconds timeout) {
    send_timeout_ms_.store(timeout.count());
  }

 private:
  PeerLink(int fd, TlsSession session, std::string description);

  // Sends one frame; `payload` is copied into the same TLS records as the header when small.
  Status SendFrame(FrameType type, const void* payload, size_t size,
                   std::chrono::steady_clock::time_point deadline);
  Status WriteAll(const void* bytes, size_t size, std::chrono::steady_clock::time_point deadline);
  Result<Frame> ReceiveFrame(std::chrono::steady_clock::time_point deadline);
  // Reads 1..size plaintext bytes.
  Result<size_t> ReadSome(void* buffer, size_t size,
                          std::chrono::steady_clock::time_point deadline);
  // Waits in poll() until the socket is ready for `events`: true when it is (or the wait was
  // interrupted: the caller's next SSL call tells), false at `deadline`. A failed poll ends the
  // link. REQUIRES: ssl_mu_ not held.
  Result<bool> AwaitSocket(short events, std::chrono::steady_clock::time_point deadline);
  // The error of a failed SSL_read/SSL_write. REQUIRES: ssl_mu_ held, right after the call.
  Status IoFailure(int ssl_error, int saved_errno, const char* doing);
  void UpdateWireCounters();  // REQUIRES: ssl_mu_ held
  // Ends the link with `why` (kept if it is the first reason) and wakes every waiter.
  Status Fail(const Status& why);

  const int fd_;
  bool owns_fd_ = true;  // false for a link that failed inside Establish or was handed over
  const SslPtr ssl_;
  const crypto::HostIdentity peer_;
  const std::string description_;
  std::atomic<int64_t> send_timeout_ms_{kDefaultSendTimeout.count()};

  std::mutex ssl_mu_;           // held during every SSL_* call, never while waiting
  bool write_pending_ = false;  // guarded by ssl_mu_: SSL_write left a record half-sent

  std::atomic<bool> establishing_{false};  // the client waits for the accept frame
  std::atomic<bool> ended_{false};
  std::atomic<bool> closed_locally_{false};
  std::atomic<bool> handed_over_{false};  // the socket is the caller's: never shut it down
  mutable std::mutex end_mu_;
  Status end_status_;  // guarded by end_mu_

  std::mutex send_mu_;  // one frame at a time on the way out

  std::mutex receive_mu_;  // one receiver at a time; guards the partial frame below
  std::string rx_header_bytes_;
  size_t rx_header_fill_ = 0;
  bool rx_have_header_ = false;
  FrameHeader rx_header_;
  std::string rx_payload_;
  size_t rx_payload_fill_ = 0;

  std::atomic<uint64_t> wire_sent_{0};
  std::atomic<uint64_t> wire_received_{0};
  std::atomic<uint64_t> payload_sent_{0};
  std::atomic<uint64_t> payload_received_{0};
  std::atomic<uint64_t> frames_sent_{0};
  std::atomic<uint64_t> frames_received_{0};
};

}  // namespace ferry::migrate
