// How PackChunkStore's packs lie in its directory and are read and written: the names
// ("<16 hex seq>.pack", a temporary ".<seq>.pack.tmp" until it is complete), positioned reads,
// and write errors that tell a full store from a fault. Internal to pack_chunk_store*.cc.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ferry::store {

inline constexpr char kPackSuffix[] = ".pack";
inline constexpr char kTempSuffix[] = ".pack.tmp";

std::string Errno(int err);
std::string SeqName(uint64_t seq);
// ENOSPC and EDQUOT are the store being full: the caller can free space and retry.
Status WriteError(const std::string& what, const std::string& path, int err);
// "<16 hex>" followed by `suffix` (after a leading '.' when `dot`): the sequence number.
bool ParseSeq(const char* name, const char* suffix, bool dot, uint64_t& seq);
// Up to `len` bytes at `offset`; fewer only at the file's end.
Result<std::string> ReadAt(int fd, uint64_t offset, size_t len, const std::string& path);

}  // namespace ferry::store
