#include "store/hold_sealer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "crypto/aead.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

namespace {

bool AllZero(const std::string& buffer, size_t len) {
  return len == 0 ||
         (buffer[0] == 0 && std::memcmp(buffer.data(), buffer.data() + 1, len - 1) == 0);
}

// Reads exactly `len` bytes at `offset`; a short read means the blob is shorter than declared.
Status ReadAt(const BlobSource& blob, uint64_t offset, size_t len, std::string& buffer) {
  size_t done = 0;
  while (done < len) {
    ssize_t n =
        ::pread(blob.fd, buffer.data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Internal("cannot read blob " + blob.name + " at offset " +
                              std::to_string(offset + done) + ": " + std::strerror(errno));
    }
    if (n == 0) {
      return Status::FailedPrecondition("blob " + blob.name + " ends at offset " +
                                        std::to_string(offset + done) + ", before its size " +
                                        std::to_string(blob.size) + " (did it change?)");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

HoldSealer::Work HoldSealer::Locate(uint64_t global) const {
  // Few blobs (a hold has two or three): a linear scan from the last is enough.
  size_t b = first_chunk_.size() - 1;
  while (first_chunk_[b] > global) --b;
  return {b, global - first_chunk_[b]};
}

bool HoldSealer::Claim(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return claimed_.insert(id).second;
}

void HoldSealer::Fail(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = std::move(status);
  failed_ = true;
}

Status HoldSealer::SealOne(const BlobSource& blob, uint64_t index, std::string& buffer,
                           ChunkRef& ref) {
  const uint64_t offset = index * chunk_bytes_;
  const size_t len = static_cast<size_t>(std::min<uint64_t>(chunk_bytes_, blob.size - offset));
  FERRY_RETURN_IF_ERROR(ReadAt(blob, offset, len, buffer));
  if (AllZero(buffer, len)) {
    ++zero_chunks_;
    return Status::Ok();
  }
  const std::string_view plain(buffer.data(), len);
  FERRY_ASSIGN_OR_RETURN(ChunkKeys keys, scope_.KeysFor(plain));
  ref.hole = false;
  ref.id = keys.id;
  std::memcpy(ref.key.data(), keys.key.data(), ref.key.size());
  ++data_chunks_;
  Status st;
  if (Claim(keys.id)) {
    auto present = chunks_.Has(keys.id);
    if (!present.ok()) st = present.status();
    if (st.ok() && !*present) {
      auto sealed = SealChunk(keys.key, plain, zstd_level_);
      st = sealed.ok() ? chunks_.Put(keys.id, *sealed) : sealed.status();
      if (st.ok()) {
        ++new_chunks_;
        new_bytes_ += sealed->size();
      }
    }
  }
  crypto::Wipe(keys.key);
  if (!st.ok()) {
    return st.WithContext("blob " + blob.name + " chunk " + std::to_string(index) + " (offset " +
                          std::to_string(offset) + ")");
  }
  return Status::Ok();
}

void HoldSealer::RunWorker(const std::vector<BlobSource>& blobs) {
  std::string buffer(chunk_bytes_, '\0');
  while (!failed_) {
    const uint64_t global = next_++;
    if (global >= total_chunks_) break;
    const Work w = Locate(global);
    Status st = SealOne(blobs[w.blob], w.index, buffer, table_.blobs[w.blob].chunks[w.index]);
    if (!st.ok()) Fail(std::move(st));
  }
  crypto::Wipe(buffer);  // it held guest memory
}

Result<ChunkTable> HoldSealer::Seal(const std::vector<BlobSource>& blobs, HoldStats& stats) {
  table_.chunk_bytes = chunk_bytes_;
  for (const BlobSource& b : blobs) {
    const uint64_t count = (b.size + chunk_bytes_ - 1) / chunk_bytes_;
    first_chunk_.push_back(total_chunks_);
    total_chunks_ += count;
    table_.blobs.push_back({b.name, b.size, std::vector<ChunkRef>(count)});
    stats.logical_bytes += b.size;
  }
  if (total_chunks_ > kMaxTableChunks) {
    return Status::InvalidArgument("blobs of " + std::to_string(stats.logical_bytes) +
                                   " bytes make too many chunks; use a larger chunk size");
  }
  std::vector<std::thread> workers;
  const int n =
      static_cast<int>(std::min<uint64_t>(threads_, std::max<uint64_t>(total_chunks_, 1)));
  for (int i = 1; i < n; ++i) {
    try {
      workers.emplace_back([&] { RunWorker(blobs); });
    } catch (const std::system_error&) {
      break;  // no thread to be had: the ones running (at least this one) do the work
    }
  }
  RunWorker(blobs);
  for (std::thread& t : workers) t.join();
  if (failed_) {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  stats.chunks = data_chunks_;
  stats.new_chunks = new_chunks_;
  stats.stored_new_bytes = new_bytes_;
  stats.zero_chunks = zero_chunks_;
  return std::move(table_);
}

}  // namespace ferry::store
