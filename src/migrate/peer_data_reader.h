// PeerDataReader: the data stream of a peer link read as a byte stream of known-length records
// (a hold's manifest, chunk ids, chunks: migration_protocol.h "Sending a hold"). Data frame
// boundaries carry no meaning (PeerLink::SendData splits as it likes), so records are cut here.
// A control frame inside the stream is the other side giving up: its "error" becomes the
// Status (Unavailable), and any other control frame is a protocol violation (Corruption).
//
// Not thread-safe: one reader per link, on the link's receiving thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "core/status.h"
#include "migrate/peer_link.h"

namespace ferry::migrate {

class PeerDataReader {
 public:
  // `idle_timeout`: the longest wait for one frame.
  PeerDataReader(PeerLink& link, std::chrono::milliseconds idle_timeout)
      : link_(link), idle_timeout_(idle_timeout) {}

  // The next `bytes` bytes of the stream. The stream ending before them is Corruption.
  // REQUIRES: the caller bounded `bytes` (it comes from a parsed, size-limited message).
  Result<std::string> Read(size_t bytes);
  // True when the stream ended right here (stream-end, nothing pending); false when more data
  // follows.
  Result<bool> AtEnd();

 private:
  Status Fill();  // one more frame

  PeerLink& link_;
  const std::chrono::milliseconds idle_timeout_;
  std::string buffer_;
  size_t pos_ = 0;
  bool ended_ = false;
};

}  // namespace ferry::migrate
