// The wire format of QEMU's migration stream as the reader (migration_stream.h) parses it:
// section types, RAM record flags, the versions it reads, and the reader's states. Internal to
// migration_stream*.cc, which split the reader by the part of the stream each one parses.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "qemu/migration_stream.h"

namespace ferry::qemu {

// Section types (QEMU_VM_* in migration/savevm.c).
constexpr uint8_t kVmEof = 0x00;
constexpr uint8_t kVmSectionStart = 0x01;
constexpr uint8_t kVmSectionPart = 0x02;
constexpr uint8_t kVmSectionEnd = 0x03;
constexpr uint8_t kVmSectionFull = 0x04;
constexpr uint8_t kVmSubsection = 0x05;
constexpr uint8_t kVmVmdesc = 0x06;
constexpr uint8_t kVmConfiguration = 0x07;
constexpr uint8_t kVmCommand = 0x08;
constexpr uint8_t kVmSectionFooter = 0x7e;

// RAM record flags (RAM_SAVE_FLAG_* in migration/ram.c).
constexpr uint64_t kFlagFull = 0x01;  // obsolete
constexpr uint64_t kFlagZero = 0x02;
constexpr uint64_t kFlagMemSize = 0x04;
constexpr uint64_t kFlagPage = 0x08;
constexpr uint64_t kFlagEos = 0x10;
constexpr uint64_t kFlagContinue = 0x20;
constexpr uint64_t kFlagXbzrle = 0x40;
constexpr uint64_t kFlagHook = 0x80;
constexpr uint64_t kFlagCompressPage = 0x100;
constexpr uint64_t kFlagMultifdFlush = 0x200;  // QEMU 8.0 on
constexpr uint64_t kFlagMask = kMigrationPageBytes - 1;

// COMMAND subcommands (MIG_CMD_* in migration/savevm.c): be16 command, be16 length, data.
// SWITCHOVER_START (QEMU 10.0 on, no data) marks the end of the iterations: QEMU sends it once
// the guest is stopped, before the iterable devices' END sections, when the machine type is
// 10.0 or later ("send-switchover-start", off in hw_compat_9_2).
constexpr uint16_t kCmdSwitchoverStart = 11;

constexpr uint32_t kFileVersion = 3;
constexpr uint32_t kRamSectionVersion = 4;
constexpr uint32_t kTargetPageBits = 12;

constexpr char kSubsectionPageBits[] = "configuration/target-page-bits";
constexpr char kSubsectionCapabilities[] = "configuration/capabilities";
constexpr char kSubsectionUuid[] = "configuration/uuid";

inline uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t Be64(const uint8_t* p) { return (uint64_t{Be32(p)} << 32) | Be32(p + 4); }

// A name from the stream, safe to put in a message: at most 64 bytes, non-printables as '?'.
inline std::string Printable(std::string_view name) {
  std::string s;
  for (size_t i = 0; i < name.size() && i < 64; ++i) {
    char c = name[i];
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}
inline std::string Printable(const uint8_t* p, size_t n) {
  return Printable(std::string_view(reinterpret_cast<const char*>(p), n));
}

inline std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

enum class MigrationStreamReader::State {
  kHeader,                  // "QEVM" be32 version
  kConfigType,              // 0x07
  kConfigNameLength,        // be32
  kConfigName,              // n
  kAfterConfig,             // 0x05 (a subsection) or a section type
  kSubsectionNameLength,    // u8
  kSubsectionName,          // n
  kSubsectionVersion,       // be32
  kPageBits,                // be32
  kUuid,                    // 16
  kCapabilityCount,         // be32
  kCapabilityNameLength,    // u8
  kCapabilityName,          // n
  kSectionType,             // u8
  kSectionId,               // be32
  kSectionNameLength,       // u8
  kSectionName,             // n
  kSectionInstanceVersion,  // be32 be32
  kRamRecord,               // be64
  kBlockNameLength,         // u8
  kBlockName,               // n
  kBlockUsedBytes,          // be64
  kBlockGuestAddress,       // be64
  kPageBlockNameLength,     // u8
  kPageBlockName,           // n
  kZeroFill,                // u8
  kPageData,                // 4096
  kFooter,                  // 0x7e be32
  kCommand,                 // be16 command, be16 length
  kDeviceState,             // the rest, passed through
};

}  // namespace ferry::qemu
