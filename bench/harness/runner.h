// The benchmark runner. An entry (cold_boot.cc, ...) is one self-contained file: it describes its
// table rows, runs one side at a time when asked, and registers itself with FERRY_BENCH_ENTRY.
// The runner owns the protocol every entry shares:
//
//   SetUp -> one untimed warm-up per side -> N rounds of (ferry, comparison) -> TearDown
//
// An entry may have a second comparison side (EntryInfo::second_comparison_side): the rounds
// are then (ferry, comparison, second comparison), and its rows get a third column.
//
// Rounds interleave the sides (A B A B ...) so drift in the host (thermal, page cache, a noisy
// neighbour) hits both equally; the table reports medians and their ratio. TearDown runs whatever
// failed, and must undo everything SetUp and RunOnce started.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/harness/figure.h"
#include "core/status.h"

namespace ferry::bench {

struct BenchConfig {
  int runs = 5;
  std::string only;       // run just this entry; "" for all
  std::string build_dir;  // holds ferryd, ferry and images/
  uint64_t memory_mib = 256;
  std::string cases;  // entries made of cases (migration's cells): run only these; "" for all
  // The QEMU both sides run: ferryd's --qemu and the comparison's bare QEMU.
  std::string qemu_binary = "qemu-system-x86_64";

  std::string ferryd_binary() const { return build_dir + "/ferryd"; }
  std::string ferry_binary() const { return build_dir + "/ferry"; }
  std::string image_dir() const { return build_dir + "/images"; }
};

enum class Side { kFerry, kComparison, kSecondComparison };
const char* SideName(Side side);  // "ferry" / "comparison" / "second comparison"

// One run of one side.
struct Trial {
  Side side = Side::kFerry;
  int round = 0;  // 1..runs; 0 for the warm-up
  bool warm_up() const { return round == 0; }
};

// What one run measured, by key (see FigureSpec): milliseconds, or MiB for a memory figure.
// A run may measure keys no figure shows (they appear in the progress line only).
using Measurements = std::map<std::string, double>;

struct EntryInfo {
  std::string name;             // what --only takes: "cold_boot"
  std::string title;            // one line for the table heading
  std::string ferry_side;       // what the ferry side does and where its clock starts and stops
  std::string comparison_side;  // same for the comparison side; "" if the entry has none
  std::vector<FigureSpec> figures;
  // Same as comparison_side for a second comparison side; "" for none (most entries).
  std::string second_comparison_side{};
  // Short names of the sides for column headings and progress lines.
  std::string ferry_label = "ferry";
  std::string comparison_label = "comparison";
  std::string second_comparison_label = "second comparison";
  // Shorter names for the ratio headings ("ferry/native"); the labels when empty.
  std::string comparison_short_label{};
  std::string second_comparison_short_label{};

  const std::string& Label(Side side) const;
};

class BenchEntry {
 public:
  virtual ~BenchEntry() = default;
  virtual EntryInfo Info() const = 0;
  virtual Status SetUp(const BenchConfig& config) = 0;
  // REQUIRES: SetUp succeeded. Leaves nothing running when it returns, so runs do not overlap.
  virtual Result<Measurements> RunOnce(const Trial& trial) = 0;
  // Facts worth printing under the table (accelerator, kernel, ...); called after the runs.
  virtual std::vector<std::string> Notes() const { return {}; }
  // Called once after SetUp, whether or not it or the runs succeeded. Must not fail.
  virtual void TearDown() = 0;
};

using EntryFactory = std::function<std::unique_ptr<BenchEntry>()>;

// Entries in registration order. Use FERRY_BENCH_ENTRY rather than calling this directly.
std::vector<std::pair<std::string, EntryFactory>>& EntryRegistry();
bool RegisterEntry(const std::string& name, EntryFactory factory);

#define FERRY_BENCH_ENTRY(name, type)                                              \
  static const bool ferry_bench_registered_##type = ::ferry::bench::RegisterEntry( \
      name, [] { return std::unique_ptr<::ferry::bench::BenchEntry>(new type()); })

struct EntryResult {
  EntryInfo info;
  std::vector<FigureResult> figures;
  std::vector<std::string> notes;
  nlohmann::json ToJson() const;
};

// Runs entries; progress lines go to `progress` (stderr), one per run.
class Runner {
 public:
  Runner(BenchConfig config, std::function<void(const std::string&)> progress)
      : config_(std::move(config)), progress_(std::move(progress)) {}

  // Names of the entries the config selects; NotFound if --only names no entry.
  Result<std::vector<std::string>> Selected() const;
  // Runs one entry through the protocol above.
  Result<EntryResult> Run(const std::string& name);

 private:
  Result<EntryResult> RunRounds(BenchEntry& entry, const EntryInfo& info);
  BenchConfig config_;
  std::function<void(const std::string&)> progress_;
};

}  // namespace ferry::bench
