// The wire of one store object's transfer to a peer, shared by `ferry hold send` (the object is a
// hold, which moves) and `ferry snapshot send` (a snapshot, which is copied): the "hold-prepare"
// exchange and the chunk stream of migrate/migration_protocol.h "Sending a hold". What each
// sender journals around it, and what each receiver makes of the object, is theirs.
//
//   sender                                   receiver
//   OfferObject: request + manifest  ---->   (checks, BeginImport)
//                wanted ids          <----   ReceiveObjectChunks: ids, then
//   SendWantedChunks: chunks, end    ---->     the chunks; then Commit
//
// Every count and length that comes off the link is bounded before it is used.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "migrate/migration_messages.h"
#include "migrate/peer_data_reader.h"
#include "migrate/peer_link.h"
#include "store/chunk_id.h"
#include "store/hold_import.h"
#include "store/store.h"

namespace ferry::hold {

struct ObjectOffer {
  uint64_t chunks_total = 0;  // distinct chunks the object lists
  uint64_t manifest_bytes = 0;
  std::vector<store::ChunkId> wanted;  // those the receiver lacks, each listed once
};

// Sends `request` (its keys and manifest_bytes filled in here from store object `object_id`,
// the owner's dedup secret added) and the manifest, then reads the ids the receiver asks for,
// refusing any the object does not list or asked twice (Corruption naming `to`).
Result<ObjectOffer> OfferObject(migrate::PeerLink& link, store::Store& store,
                                const std::string& object_id, migrate::HoldPrepareRequest request,
                                const std::string& to, std::chrono::milliseconds timeout);

// Sends each wanted chunk as stored (sealed), then stream-end. `progress(sent, bytes)` is called
// after each data write. Returns the sealed bytes sent.
Result<uint64_t> SendWantedChunks(migrate::PeerLink& link, store::Store& store,
                                  const std::vector<store::ChunkId>& wanted,
                                  const std::function<void(size_t, uint64_t)>& progress);

struct ReceivedChunks {
  uint64_t chunks = 0;  // asked for (and received)
  uint64_t bytes = 0;   // sealed bytes read
};

// Receiver, once `import` is begun and checked: adopts the owner's dedup secret when `request`
// carries one, sends "hold-prepared" and the ids of the chunks the import lacks, then reads the
// chunk stream until stream-end, each chunk checked (asked for, bounded, opening under the
// object's table) and put. `what` names the object in errors. The import is not committed.
Result<ReceivedChunks> ReceiveObjectChunks(migrate::PeerLink& link, migrate::PeerDataReader& reader,
                                           store::Store& store, store::HoldImport& import,
                                           const migrate::HoldPrepareRequest& request,
                                           const std::string& what);

}  // namespace ferry::hold
