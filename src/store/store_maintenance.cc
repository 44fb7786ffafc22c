// Store::Verify and Store::Collect: checking everything, and mark-and-sweep.
#include <mutex>
#include <shared_mutex>
#include <unordered_set>

#include "store/opened_hold.h"
#include "store/sealed_chunk.h"
#include "store/store.h"

namespace ferry::store {

using IdSet = std::unordered_set<ChunkId, ChunkIdHash>;

Result<VerifyReport> Store::Verify() {
  VerifyReport report;
  // Chunk files first, without keys: a damaged one is reported once here, by file name.
  FERRY_ASSIGN_OR_RETURN(std::vector<StoredChunk> chunks, chunks_->List());
  IdSet damaged, good;
  for (const StoredChunk& c : chunks) {
    ++report.chunks_checked;
    auto bytes = chunks_->Get(c.id);
    Status st =
        bytes.ok() ? CheckSealedChunk(*bytes, chunks_->Describe(c.id)).status() : bytes.status();
    if (!st.ok()) {
      report.problems.push_back(st.message());
      damaged.insert(c.id);
    }
  }
  for (std::string& problem : chunks_->CheckContainers()) report.problems.push_back(problem);
  for (const std::string& id : ListHolds()) {
    ++report.holds_checked;
    CheckHoldChunks(id, report, good, damaged);
  }
  return report;
}

void Store::CheckHoldChunks(const std::string& hold_id, VerifyReport& report, IdSet& good,
                            const IdSet& damaged) {
  auto hold = OpenHold(hold_id);
  if (!hold.ok()) {
    report.problems.push_back(hold.status().message());
    return;
  }
  for (const BlobTable& blob : hold->table.blobs) {
    for (size_t i = 0; i < blob.chunks.size(); ++i) {
      const ChunkRef& ref = blob.chunks[i];
      if (ref.hole || good.count(ref.id)) continue;
      const std::string name = hold->ChunkName(blob, i);
      if (damaged.count(ref.id)) {
        report.problems.push_back(name + " is damaged (" + chunks_->Describe(ref.id) + ")");
        continue;
      }
      auto bytes = chunks_->Get(ref.id);
      if (!bytes.ok()) {
        report.problems.push_back(name + " is missing (" + chunks_->Describe(ref.id) + ")");
        continue;
      }
      auto plain = OpenSealedChunk(ref.KeyView(), *bytes, chunks_->Describe(ref.id));
      if (!plain.ok()) {
        report.problems.push_back(name + " is damaged (" + plain.status().message() + ")");
        continue;
      }
      good.insert(ref.id);
    }
  }
}

Result<CollectReport> Store::Collect() {
  std::unique_lock<std::shared_mutex> lock(collect_mu_);
  // Mark: a hold that cannot be read might list any chunk, so nothing is swept then.
  IdSet live;
  for (const std::string& id : ListHolds()) {
    auto hold = OpenHold(id);
    if (!hold.ok()) {
      return Status::FailedPrecondition(
          "store " + options_.dir + ": nothing collected, because hold " + id +
          " cannot be read (" + hold.status().message() +
          "); delete that hold (it is lost) or restore its manifest, then collect again");
    }
    for (const BlobTable& blob : hold->table.blobs) {
      for (const ChunkRef& ref : blob.chunks) {
        if (!ref.hole) live.insert(ref.id);
      }
    }
  }
  CollectReport report;
  FERRY_ASSIGN_OR_RETURN(report.bytes_freed, chunks_->DiscardUnsynced());
  FERRY_ASSIGN_OR_RETURN(std::vector<StoredChunk> chunks, chunks_->List());
  std::vector<ChunkId> dead;
  for (const StoredChunk& c : chunks) {
    if (!live.count(c.id)) dead.push_back(c.id);
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t freed, chunks_->Remove(dead));
  report.bytes_freed += freed;
  report.chunks_removed = dead.size();
  return report;
}

}  // namespace ferry::store
