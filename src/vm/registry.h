// The registry: ferryd's durable memory, one SQLite database in the state directory. A restarted
// ferryd reads it to find every VM it had. Thread-safe: one connection behind a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_record.h"

struct sqlite3;

namespace ferry::vm {

class Registry {
 public:
  // The schema version this build writes; a database with a newer one is refused.
  static constexpr int kSchemaVersion = 2;

  // Opens or creates PATH. A file that is not a ferry registry, or is damaged, is refused with
  // an error naming it.
  static Result<std::unique_ptr<Registry>> Open(const std::string& path);
  ~Registry();

  // Inserts a new VM; AlreadyExists if the name is taken.
  Status InsertVm(const VmRecord& record);
  // Replaces the stored record of an existing VM.
  Status UpdateVm(const VmRecord& record);
  Status DeleteVm(const std::string& name);
  Result<VmRecord> GetVm(const std::string& name);
  Result<std::vector<VmRecord>> ListVms();

  // Other named objects (snapshots, templates, ...) as JSON, by kind. Insert refuses a taken
  // name; Put replaces.
  Status InsertObject(const std::string& kind, const std::string& name, const nlohmann::json& j);
  Status PutObject(const std::string& kind, const std::string& name, const nlohmann::json& j);
  Status DeleteObject(const std::string& kind, const std::string& name);
  Result<std::vector<std::pair<std::string, nlohmann::json>>> ListObjects(const std::string& kind);

 private:
  Registry(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const std::string& sql);
  Status Error(const std::string& what);

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace ferry::vm
