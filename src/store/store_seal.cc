// Store::SealHold and Store::ReconstituteBlob: a hold's way in and out.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "core/files.h"
#include "crypto/aead.h"
#include "store/hold_sealer.h"
#include "store/opened_hold.h"
#include "store/sealed_chunk.h"
#include "store/store.h"

namespace ferry::store {

namespace {

Status CheckBlobs(const std::vector<BlobSource>& blobs) {
  if (blobs.empty() || blobs.size() > kMaxBlobs) {
    return Status::InvalidArgument("a hold has 1 to " + std::to_string(kMaxBlobs) + " blobs");
  }
  std::set<std::string> names;
  for (const BlobSource& b : blobs) {
    FERRY_RETURN_IF_ERROR(ValidateBlobName(b.name));
    if (!names.insert(b.name).second) {
      return Status::InvalidArgument("blob " + b.name + " is given twice");
    }
    if (b.fd < 0) return Status::InvalidArgument("blob " + b.name + " has no file descriptor");
  }
  return Status::Ok();
}

// What a failed seal tells the user: which hold, why, and what to do.
Status SealFailure(const std::string& hold_id, const std::string& dir, const Status& st) {
  std::string msg = "hold " + hold_id + " was not made: " + st.message();
  if (st.code() == Status::Code::kResourceExhausted) {
    msg += "; the store's filesystem (" + dir +
           ") is full: free space there (delete holds, run `ferry store gc`) and retry";
  }
  return Status::FromCode(st.code(), msg);
}

int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

Status WriteAllAt(int fd, std::string_view bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      std::string msg =
          "cannot write at offset " + std::to_string(offset + done) + ": " + std::strerror(err);
      return err == ENOSPC ? Status::ResourceExhausted(msg) : Status::Internal(msg);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<HoldStats> Store::SealHold(const HoldHeader& header, const std::vector<BlobSource>& blobs) {
  FERRY_RETURN_IF_ERROR(ValidateHoldHeader(header));
  FERRY_RETURN_IF_ERROR(CheckBlobs(blobs).WithContext("hold " + header.hold_id));
  if (PathExists(HoldPath(header.hold_id))) {
    return Status::AlreadyExists("hold " + header.hold_id + " exists already in the store");
  }
  std::shared_lock<std::shared_mutex> collect_lock(collect_mu_);
  auto fail = [&](const Status& st) { return SealFailure(header.hold_id, options_.dir, st); };
  auto scope = keys_->Scope(header.owner_fingerprint);
  if (!scope.ok()) return fail(scope.status());
  HoldStats stats;
  auto start = std::chrono::steady_clock::now();
  HoldSealer sealer(*chunks_, **scope, options_.chunk_bytes, options_.zstd_level, options_.threads);
  auto table = sealer.Seal(blobs, stats);
  if (!table.ok()) return fail(table.status());
  stats.chunk_ms = MsSince(start);
  // Chunks first, manifest last: a hold never lists a chunk that is not durable.
  start = std::chrono::steady_clock::now();
  Status synced = chunks_->Sync();
  if (!synced.ok()) return fail(synced);
  stats.sync_ms = MsSince(start);
  start = std::chrono::steady_clock::now();

  HoldManifest manifest;
  manifest.header = header;
  manifest.chunk_bytes = options_.chunk_bytes;
  manifest.logical_bytes = stats.logical_bytes;
  manifest.sealed_at = static_cast<int64_t>(std::time(nullptr));
  auto data_key = crypto::RandomBytes(crypto::kAeadKeyBytes);
  if (!data_key.ok()) return fail(data_key.status());
  auto file = NewManifestFile(manifest, *data_key, *table);
  crypto::Wipe(*data_key);
  if (!file.ok()) return fail(file.status());
  Status written = WriteManifestFile(*file, /*replace=*/false);
  if (!written.ok()) return fail(written);
  stats.manifest_ms = MsSince(start);
  return stats;
}

Status Store::ReconstituteBlob(const std::string& hold_id, const std::string& name, int out_fd) {
  FERRY_ASSIGN_OR_RETURN(OpenedHold hold, OpenHold(hold_id));
  auto it = std::find_if(hold.table.blobs.begin(), hold.table.blobs.end(),
                         [&](const BlobTable& b) { return b.name == name; });
  if (it == hold.table.blobs.end()) {
    std::string names;
    for (const BlobTable& b : hold.table.blobs) names += (names.empty() ? "" : ", ") + b.name;
    return Status::NotFound("hold " + hold_id + " has no blob " + name + " (it has " + names + ")");
  }
  const BlobTable& blob = *it;
  const std::string where = "hold " + hold_id + ": blob " + name;
  // Truncating first turns every byte not written below into a hole (sparse on tmpfs).
  if (::ftruncate(out_fd, 0) != 0 || ::ftruncate(out_fd, static_cast<off_t>(blob.size)) != 0) {
    const int err = errno;
    std::string msg = where + ": cannot size the output to " + std::to_string(blob.size) +
                      " bytes: " + std::strerror(err);
    return err == ENOSPC || err == EFBIG ? Status::ResourceExhausted(msg) : Status::Internal(msg);
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status error;
  auto worker = [&] {
    while (!failed) {
      const size_t i = next++;
      if (i >= blob.chunks.size()) break;
      Status st = RestoreChunk(hold, blob, i, out_fd);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.ok()) error = std::move(st);
        failed = true;
      }
    }
  };
  std::vector<std::thread> workers;
  for (int i = 1; i < options_.threads; ++i) {
    try {
      workers.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (std::thread& t : workers) t.join();
  return error;
}

Status Store::RestoreChunk(const OpenedHold& hold, const BlobTable& blob, size_t index,
                           int out_fd) {
  const ChunkRef& ref = blob.chunks[index];
  if (ref.hole) return Status::Ok();
  const uint64_t offset = uint64_t{index} * hold.table.chunk_bytes;
  const uint64_t len = std::min<uint64_t>(hold.table.chunk_bytes, blob.size - offset);
  const std::string name = hold.ChunkName(blob, index);
  auto sealed = chunks_->Get(ref.id);
  if (!sealed.ok()) {
    if (sealed.status().code() == Status::Code::kNotFound) {
      return Status::Corruption(name + " is missing (" + chunks_->Describe(ref.id) +
                                "); the hold is damaged");
    }
    if (sealed.status().code() == Status::Code::kCorruption) {
      return Status::Corruption(name + " is damaged (" + sealed.status().message() +
                                "); the hold is damaged");
    }
    return sealed.status().WithContext(name);
  }
  auto plain = OpenSealedChunk(ref.KeyView(), *sealed, chunks_->Describe(ref.id));
  if (!plain.ok()) {
    return Status::Corruption(name + " is damaged (" + plain.status().message() +
                              "); the hold is damaged");
  }
  if (plain->size() != len) {
    return Status::Corruption(name + " is damaged (it holds " + std::to_string(plain->size()) +
                              " bytes, not " + std::to_string(len) + "); the hold is damaged");
  }
  Status written = WriteAllAt(out_fd, *plain, offset);
  crypto::Wipe(*plain);
  return written.WithContext(name);
}

}  // namespace ferry::store
