// A reader of QEMU 7.2's and 10.0's migration streams: it splits the stream into RAM pages (by RAM
// block and offset) and everything else, and refuses what it does not understand. The stream comes
// from a QEMU a guest may have subverted: every byte is untrusted, and every size is bounded.
//
// # The subset accepted (precopy; no compression, multifd, XBZRLE, RDMA, postcopy or COLO)
//
// All integers are big-endian. Learnt from QEMU v7.2.0 (migration/savevm.c, ram.c, qemu-file.c,
// docs/devel/migration.rst) and checked against streams of qemu-system-x86_64 7.2 and 10.0.2
// (testdata/). 10.0 differs only by its machine type and the SWITCHOVER_START command.
//
//   header         "QEVM" be32 3
//   configuration  0x07 be32 n, machine type (n bytes, "pc-q35-7.2"), then subsections, each
//                  0x05 u8 n, name, be32 version 1 and a body by name:
//                    "configuration/target-page-bits"  be32 12 (x86 never sends it)
//                    "configuration/capabilities"      be32 count, each u8 n + name; QEMU 7.2
//                                                      lists only x-ignore-shared, when it is on
//                    "configuration/uuid"              16 bytes
//   sections       u8 type, then by type:
//                    0x01 START  be32 section id, u8 n, idstr, be32 instance id, be32 version
//                    0x02 PART   be32 section id
//                    0x03 END    be32 section id
//                  each followed by its body and the footer 0x7e be32 section id (send-section-
//                  footer is on for every q35 machine type ferry runs).
//   RAM records    the body of the "ram" section (instance 0, version 4) is a run of records, each
//                  be64 (offset | flags), offset page-aligned, flags in the low 12 bits:
//                    MEM_SIZE 0x04  offset = total bytes; then blocks until their sizes add up to
//                                   it, each u8 n, idstr, be64 used length, and be64 guest
//                                   address when x-ignore-shared is on (the 7.2 layout; no
//                                   page-size field, which only postcopy adds). Setup only.
//                    ZERO     0x02  [u8 n, idstr unless CONTINUE] u8 fill: 4096 bytes of `fill`
//                    PAGE     0x08  [u8 n, idstr unless CONTINUE] 4096 bytes
//                    CONTINUE 0x20  with ZERO or PAGE: the block of the previous page record,
//                                   which may be in an earlier section
//                    EOS      0x10  offset 0: ends the section's body
//                  Pages of a block mapped share=on are absent when x-ignore-shared is on; ROM
//                  blocks (pc.bios, ACPI tables) are always sent.
//   switchover     0x08 COMMAND be16 11 (SWITCHOVER_START) be16 0: QEMU 10.0 on, with a machine
//                  type of 10.0 or later (QEMU's own rule: "send-switchover-start"), once, after
//                  the last PART and before RAM's END. Refused in a stream of an older machine.
//   device state   0x04 FULL sections and 0x00 EOF, then 0x06 be32 n and n bytes of JSON (the
//                  "vmdesc", a description for tools; QEMU's loader skips it).
//
// # The phases, in QEMU 7.2's order (qemu_savevm_state_setup / _iterate / _complete_precopy)
//
//   header, configuration, "ram" START (block list, pages, EOS), any number of "ram" PART (pages,
//   EOS), [SWITCHOVER_START,] "ram" END (the last pages, EOS), then the device state: non-iterable
//   devices as FULL sections, EOF, vmdesc. RAM is the only iterable device of a ferry VM (no block
//   migration, dirty bitmaps or VFIO), so every RAM byte is in START/PART/END sections and the
//   device state comes after all of them, cleanly split. A FULL section carries no length (its
//   layout is the device's VMStateDescription), so the device state is passed through whole,
//   unparsed: the reader checks only that it starts with FULL or EOF, stays under
//   kMaxDeviceStateBytes and ends with EOF and a vmdesc whose length matches.
//
// # Refused, with Status::Corruption naming the byte offset and what was wrong
//
//   bad magic or version; a missing or malformed configuration, an unknown subsection; a
//   COMMAND section (postcopy, COLO, return path) other than one SWITCHOVER_START where QEMU
//   sends it; a section other than "ram" before RAM's END
//   (another iterable device: its end could not be found); PART/END of an unknown section id; a
//   wrong or missing footer; flags of compressed pages, XBZRLE, RDMA hooks, multifd sync or the
//   obsolete FULL page, any unknown flag or combination; a page before the block list, of an
//   unknown block, or at or past its block's used length; a block list sent again, outside
//   setup, with a duplicate, empty or over-long name, or whose sizes do not add up; sizes over
//   the limits below; a stream that ends anywhere but after the vmdesc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::qemu {

inline constexpr uint64_t kMigrationPageBytes = 4096;  // TARGET_PAGE_SIZE of x86
// Limits on what the stream may claim; larger is refused as absurd.
inline constexpr uint64_t kMaxMigrationRamBytes = uint64_t{1} << 40;  // per block and in total
inline constexpr size_t kMaxMigrationRamBlocks = 256;                 // a q35 VM has about 6
inline constexpr uint32_t kMaxMachineTypeBytes = 256;
inline constexpr uint32_t kMaxMigrationCapabilities = 64;
inline constexpr uint64_t kMaxDeviceStateBytes = uint64_t{256} << 20;  // about 1 MiB in practice
inline constexpr uint32_t kMaxVmdescBytes = uint32_t{1} << 20;         // about 43 KiB for a q35 VM

// Whether QEMU sends SWITCHOVER_START for `machine_type` (the configuration's, "pc-q35-10.0"):
// q35 and i440fx machine types of version 10.0 and later. QEMU 7.2's "pc-q35-7.2" does not.
bool MachineSendsSwitchoverStart(std::string_view machine_type);

// One RAM block of the stream's block list.
struct MigrationRamBlock {
  std::string name;  // QEMU's idstr: "pc.ram", "ram0", "/rom@etc/acpi/tables"
  uint64_t used_bytes = 0;
  std::optional<uint64_t> guest_address;  // sent only with x-ignore-shared
  bool operator==(const MigrationRamBlock&) const = default;
};

// One page record. `data` points into the reader's input or buffer: valid only during the call.
struct MigrationRamPage {
  size_t block = 0;               // index into the block list
  uint64_t offset = 0;            // a multiple of kMigrationPageBytes, below the block's used_bytes
  std::span<const uint8_t> data;  // kMigrationPageBytes bytes, or empty for a ZERO record
  uint8_t fill = 0;               // a ZERO record's byte (QEMU 7.2 always sends 0)
  bool zero() const { return data.empty(); }
};

// Which section an EOS ended: the setup (START), an iteration (PART) or the last one (END).
enum class RamSectionKind { kSetup, kIteration, kComplete };

// What the reader reports, in stream order. A non-OK Status from a callback stops the read: Feed
// returns it as it is, and so does every later call.
class MigrationStreamVisitor {
 public:
  virtual ~MigrationStreamVisitor() = default;
  // Once, before any page.
  virtual Status OnRamBlocks(const std::vector<MigrationRamBlock>& blocks) { return Status::Ok(); }
  virtual Status OnRamPage(const MigrationRamPage& page) { return Status::Ok(); }
  // After the EOS of each RAM section; kComplete means every page has been reported.
  virtual Status OnRamSectionEnd(RamSectionKind kind) { return Status::Ok(); }
  // Every byte that is not part of a page record, in order: header, configuration, section
  // headers and footers, the block list, EOS records, the device state. Pages are reported
  // between the pieces where they were, so these bytes with the pages written back where
  // they came are the stream again.
  virtual Status OnOtherBytes(std::span<const uint8_t> bytes) { return Status::Ok(); }
};

struct MigrationStreamStats {
  uint64_t pages = 0;               // PAGE records
  uint64_t zero_pages = 0;          // ZERO records
  uint64_t ram_sections = 0;        // EOS records seen
  uint64_t device_state_bytes = 0;  // from the first FULL/EOF byte to the end
};

// Reads one stream, fed in pieces of any size. Memory stays bounded whatever the stream's size:
// one record (up to 4 KiB), the block list, and at most twice kMaxVmdescBytes of the device
// state's end (for the check of its last bytes). Not thread-safe; one instance per stream.
class MigrationStreamReader {
 public:
  explicit MigrationStreamReader(MigrationStreamVisitor& visitor) : visitor_(visitor) {}

  // Reads the next piece. After an error every later call returns that error.
  Status Feed(std::span<const uint8_t> bytes);
  // The input has ended: OK only when the stream ended where QEMU ends one.
  Status Finish();

  uint64_t bytes_read() const { return offset_; }
  const std::string& machine_type() const { return machine_type_; }
  bool ignore_shared() const { return ignore_shared_; }
  const std::vector<MigrationRamBlock>& blocks() const { return blocks_; }
  const MigrationStreamStats& stats() const { return stats_; }

 private:
  enum class State;
  // One item of `need_` bytes, by state: Step dispatches to the others.
  Status Step(const uint8_t* item);
  Status StepHeader(const uint8_t* item);
  Status StepConfiguration(const uint8_t* item);
  Status StepConfigurationValue(const uint8_t* item);
  Status StepSectionHeader(const uint8_t* item);
  Status StepBlockList(const uint8_t* item);
  Status StepFooter(const uint8_t* item);
  Status StepCommand();
  Status StepCommandHeader(const uint8_t* item);
  Status StepSectionType(uint8_t type);
  Status StepRamRecord(uint64_t value);
  Status StepPage(const uint8_t* item);
  Status FinishBlockName(const uint8_t* name, size_t length);
  Status FlushOtherBytes();
  Status Refuse(uint64_t at, const std::string& what) const;
  void Expect(State state, size_t bytes);
  Status ReadDeviceState(std::span<const uint8_t> bytes);
  const char* Describe(State state) const;

  MigrationStreamVisitor& visitor_;
  Status status_;
  bool finished_ = false;
  State state_{};
  size_t need_ = 8;             // bytes of the item the state reads
  std::vector<uint8_t> item_;   // an item split across pieces, up to need_ bytes
  std::vector<uint8_t> other_;  // non-page bytes not yet given to the visitor
  uint64_t offset_ = 0;         // bytes consumed
  uint64_t item_offset_ = 0;    // where the current item starts
  uint64_t record_offset_ = 0;  // where the current section or record starts

  std::string machine_type_;
  bool ignore_shared_ = false;
  std::vector<std::string> subsections_seen_;
  std::string subsection_;
  uint32_t capabilities_left_ = 0;
  uint8_t section_type_ = 0;
  uint32_t section_id_ = 0;
  std::optional<uint32_t> ram_section_id_;
  bool ram_complete_ = false;
  bool switchover_started_ = false;  // SWITCHOVER_START seen: only RAM's END may follow

  std::vector<MigrationRamBlock> blocks_;
  bool blocks_known_ = false;
  uint64_t blocks_left_bytes_ = 0;    // of the block list being read
  std::optional<size_t> page_block_;  // the block of the last page record (CONTINUE)
  uint64_t page_offset_ = 0;
  uint8_t page_flags_ = 0;

  std::string device_state_tail_;  // the last bytes of the device state, for the vmdesc check
  MigrationStreamStats stats_;
};

// Reads `fd` to its end into `reader` and finishes it. `what` names the stream in errors.
Status ReadMigrationStream(int fd, MigrationStreamReader& reader, const std::string& what);

}  // namespace ferry::qemu
