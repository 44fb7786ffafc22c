#include "hold/object_transfer.h"

#include <unordered_set>

#include "crypto/aead.h"

namespace ferry::hold {
namespace {

// Chunk records are gathered into data writes of about this size.
constexpr size_t kSendBatchBytes = 1 << 20;
// A sealed chunk is its plaintext (at most the store's chunk size) compressed and sealed; the
// bound keeps a peer from making us buffer more.
constexpr uint32_t kMaxSealedChunkBytes = 16u << 20;

void PutLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t GetLe32(std::string_view b) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[i]);
  return v;
}

}  // namespace

Result<ObjectOffer> OfferObject(migrate::PeerLink& link, store::Store& store,
                                const std::string& object_id, migrate::HoldPrepareRequest request,
                                const std::string& to, std::chrono::milliseconds timeout) {
  ObjectOffer offer;
  FERRY_ASSIGN_OR_RETURN(std::vector<store::ChunkId> ids, store.HoldChunkIds(object_id));
  offer.chunks_total = ids.size();
  FERRY_ASSIGN_OR_RETURN(request.owner_secret, store.ExportOwnerSecret(request.owner));
  {
    FERRY_ASSIGN_OR_RETURN(store::HoldExport exported, store.ExportHold(object_id));
    request.manifest_bytes = exported.manifest.size();
    request.data_key = exported.data_key;
    offer.manifest_bytes = exported.manifest.size();
    // The keys travel only inside TLS: the copies made on the way out are wiped.
    nlohmann::json message = migrate::MessageJson(request);
    std::string text = message.dump();
    for (const char* key : {"data_key", "owner_secret"}) {
      if (message.contains(key)) crypto::Wipe(message[key].get_ref<std::string&>());
    }
    Status sent = link.SendControlBytes(text);
    crypto::Wipe(text);
    FERRY_RETURN_IF_ERROR(sent);
    FERRY_RETURN_IF_ERROR(link.SendData(exported.manifest.data(), exported.manifest.size()));
  }
  FERRY_ASSIGN_OR_RETURN(migrate::HoldPreparedReply prepared,
                         migrate::ExpectPeerMessage<migrate::HoldPreparedReply>(
                             link, timeout, "the destination's hold-prepared"));
  if (prepared.chunks > ids.size()) {
    return Status::Corruption(to + " asks for " + std::to_string(prepared.chunks) +
                              " chunks of an object of " + std::to_string(ids.size()));
  }
  migrate::PeerDataReader reader(link, timeout);
  FERRY_ASSIGN_OR_RETURN(std::string raw, reader.Read(prepared.chunks * store::ChunkId::kBytes));
  std::unordered_set<store::ChunkId, store::ChunkIdHash> listed(ids.begin(), ids.end());
  std::unordered_set<store::ChunkId, store::ChunkIdHash> asked;
  for (uint64_t i = 0; i < prepared.chunks; ++i) {
    auto id = store::ChunkId::FromBytes(
        std::string_view(raw).substr(i * store::ChunkId::kBytes, store::ChunkId::kBytes));
    if (!listed.count(id) || !asked.insert(id).second) {
      return Status::Corruption(to + " asks for chunk " + id.Hex() +
                                ", which the object does not list (or twice)");
    }
    offer.wanted.push_back(id);
  }
  return offer;
}

Result<uint64_t> SendWantedChunks(migrate::PeerLink& link, store::Store& store,
                                  const std::vector<store::ChunkId>& wanted,
                                  const std::function<void(size_t, uint64_t)>& progress) {
  std::string batch;
  batch.reserve(kSendBatchBytes + (1 << 20));
  uint64_t bytes = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    FERRY_ASSIGN_OR_RETURN(std::string sealed, store.ReadSealedChunk(wanted[i]));
    batch.append(wanted[i].View());
    PutLe32(batch, static_cast<uint32_t>(sealed.size()));
    batch.append(sealed);
    bytes += sealed.size();
    if (batch.size() >= kSendBatchBytes) {
      FERRY_RETURN_IF_ERROR(link.SendData(batch.data(), batch.size()));
      batch.clear();
      if (progress) progress(i + 1, bytes);
    }
  }
  if (!batch.empty()) FERRY_RETURN_IF_ERROR(link.SendData(batch.data(), batch.size()));
  FERRY_RETURN_IF_ERROR(link.SendStreamEnd());
  return bytes;
}

namespace {

// "hold-prepared" and the ids of the chunks the import lacks.
Status AskForNeeded(migrate::PeerLink& link, const store::HoldImport& import) {
  const std::vector<store::ChunkId>& needed = import.needed();
  FERRY_RETURN_IF_ERROR(migrate::SendPeerMessage(link, migrate::HoldPreparedReply{needed.size()}));
  std::string ids;
  ids.reserve(needed.size() * store::ChunkId::kBytes);
  for (const auto& id : needed) ids.append(id.View());
  // No empty data frame: the sender reads none when it is told of no chunks.
  if (!ids.empty()) FERRY_RETURN_IF_ERROR(link.SendData(ids.data(), ids.size()));
  return Status::Ok();
}

Result<uint64_t> ReceiveWantedChunks(migrate::PeerDataReader& reader, store::HoldImport& import,
                                     const std::string& what) {
  const std::vector<store::ChunkId>& needed = import.needed();
  std::unordered_set<store::ChunkId, store::ChunkIdHash> want(needed.begin(), needed.end());
  uint64_t bytes = 0;
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(bool end, reader.AtEnd());
    if (end) break;
    FERRY_ASSIGN_OR_RETURN(std::string head, reader.Read(store::ChunkId::kBytes + 4));
    const store::ChunkId id =
        store::ChunkId::FromBytes(std::string_view(head).substr(0, store::ChunkId::kBytes));
    const uint32_t size = GetLe32(std::string_view(head).substr(store::ChunkId::kBytes));
    if (size > kMaxSealedChunkBytes || want.erase(id) == 0) {
      return Status::Corruption(what + ": the sender sent chunk " + id.Hex() +
                                (size > kMaxSealedChunkBytes
                                     ? " of " + std::to_string(size) + " bytes, too large"
                                     : ", which was not asked for"));
    }
    FERRY_ASSIGN_OR_RETURN(std::string sealed, reader.Read(size));
    FERRY_RETURN_IF_ERROR(import.PutChunk(id, sealed));
    bytes += size;
  }
  return bytes;
}

}  // namespace

Result<ReceivedChunks> ReceiveObjectChunks(migrate::PeerLink& link, migrate::PeerDataReader& reader,
                                           store::Store& store, store::HoldImport& import,
                                           const migrate::HoldPrepareRequest& request,
                                           const std::string& what) {
  if (request.owner_secret) {
    FERRY_RETURN_IF_ERROR(
        store.AdoptOwnerSecret(import.manifest().header.owner_fingerprint, *request.owner_secret)
            .status());
  }
  FERRY_RETURN_IF_ERROR(AskForNeeded(link, import));
  ReceivedChunks received;
  received.chunks = import.needed().size();
  FERRY_ASSIGN_OR_RETURN(received.bytes, ReceiveWantedChunks(reader, import, what));
  return received;
}

}  // namespace ferry::hold
