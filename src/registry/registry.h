// The registry: ferryd's durable memory, one SQLite database in the state directory. A restarted
// ferryd reads it to find every VM, snapshot, template, peer, hold and unfinished migration it
// had. Each kind of row is read and written through a typed table (table.h); this class is the
// database under them: rows of a kind, by name, as JSON text.
//
//   schema 1  vms(name, record)                      the VMs
//   schema 2  objects(kind, name, record)            every other kind
//
// VM rows keep their own SQL table (a registry of schema 1 opens unchanged); the kind "vm" names
// it. Thread-safe: one connection behind a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/thread_annotations.h"

struct sqlite3;

namespace ferry::registry {

// The kind whose rows live in the `vms` table.
inline constexpr std::string_view kVmKind = "vm";

class Registry {
 public:
  // The schema version this build writes; a database with a newer one is refused.
  static constexpr int kSchemaVersion = 2;

  // Opens or creates PATH. A file that is not a ferry registry, or is damaged, is refused with
  // an error naming it.
  static Result<std::unique_ptr<Registry>> Open(const std::string& path);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const std::string& path() const { return path_; }

  // A new row; AlreadyExists ("<kind> NAME already exists; choose another name") if taken.
  Status Insert(std::string_view kind, const std::string& name, const nlohmann::json& row);
  // Replaces an existing row; NotFound ("<kind> NAME is not registered") if there is none.
  Status Update(std::string_view kind, const std::string& name, const nlohmann::json& row);
  // Inserts or replaces.
  Status Put(std::string_view kind, const std::string& name, const nlohmann::json& row);
  // Removes the row if there is one.
  Status Delete(std::string_view kind, const std::string& name);
  // The row, nullopt if there is none; Corruption if its text is not JSON.
  Result<std::optional<nlohmann::json>> Get(std::string_view kind, const std::string& name);
  // Every row of `kind`, by name; Corruption if one is not JSON.
  Result<std::vector<std::pair<std::string, nlohmann::json>>> List(std::string_view kind);

 private:
  Registry(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const std::string& sql);
  Status Error(const std::string& what) FERRY_REQUIRES(mu_);
  // Runs a statement that changes rows: SQL_VMS for VM rows, SQL_OBJECTS for the others, with
  // (kind,) name and the row bound. The number of rows it changed.
  Result<int> Change(std::string_view kind, const std::string& name, const nlohmann::json* row,
                     const char* sql_vms, const char* sql_objects, const std::string& what);
  Result<nlohmann::json> Parse(std::string_view kind, const std::string& name, const char* text);

  Mutex mu_;
  sqlite3* db_ FERRY_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace ferry::registry
