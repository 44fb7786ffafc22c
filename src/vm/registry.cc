#include "vm/registry.h"

#include <sqlite3.h>

namespace ferry::vm {

namespace {

// RAII for a prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() { return stmt_; }
  bool ok() const { return stmt_ != nullptr; }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// ferry's magic in the SQLite header's application_id field: "FRRY".
constexpr int kApplicationId = 0x46525259;

}  // namespace

Status Registry::Error(const std::string& what) {
  return Status::Internal("registry " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status Registry::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Internal("registry " + path_ + ": " + msg);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Registry>> Registry::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::Internal("cannot open registry " + path + ": " + msg);
  }
  std::unique_ptr<Registry> reg(new Registry(db, path));
  sqlite3_busy_timeout(db, 5000);
  auto damaged = [&](const std::string& why) {
    return Status::Corruption("registry " + path + " " + why +
                              "; restore it from a backup or move it aside to start empty");
  };
  // Reading the header detects a file that is not SQLite at all.
  int app_id = 0, version = 0;
  {
    Statement st(db, "PRAGMA application_id");
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW) return damaged("is not a SQLite database");
    app_id = sqlite3_column_int(st.get(), 0);
  }
  {
    Statement st(db, "PRAGMA user_version");
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW) return damaged("is unreadable");
    version = sqlite3_column_int(st.get(), 0);
  }
  {
    Statement st(db, "PRAGMA quick_check");
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW ||
        std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0))) != "ok") {
      return damaged("fails SQLite's integrity check");
    }
  }
  int tables = 0;
  {
    Statement st(db, "SELECT count(*) FROM sqlite_master");
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW) return damaged("is unreadable");
    tables = sqlite3_column_int(st.get(), 0);
  }
  if (app_id == 0 && version == 0 && tables > 0) {
    return damaged("belongs to another program (wrong application id)");
  }
  if (app_id == 0 && version == 0) {
    FERRY_RETURN_IF_ERROR(reg->Exec(
        "PRAGMA journal_mode=WAL;"
        "PRAGMA application_id=" + std::to_string(kApplicationId) + ";"
        "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";"
        "CREATE TABLE IF NOT EXISTS vms (name TEXT PRIMARY KEY, record TEXT NOT NULL);"));
    version = 1;
  } else if (app_id != kApplicationId) {
    return damaged("belongs to another program (wrong application id)");
  } else if (version > kSchemaVersion) {
    return Status::FailedPrecondition("registry " + path + " has schema version " +
                                      std::to_string(version) + ", newer than this ferryd (" +
                                      std::to_string(kSchemaVersion) + "); upgrade ferry");
  }
  if (version < 2) {
    // Schema 2 adds named objects of other kinds (snapshots, templates).
    FERRY_RETURN_IF_ERROR(reg->Exec(
        "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, name TEXT NOT NULL, "
        "record TEXT NOT NULL, PRIMARY KEY (kind, name));"
        "PRAGMA user_version=2;"));
  }
  FERRY_RETURN_IF_ERROR(reg->Exec("PRAGMA synchronous=NORMAL;"));
  return reg;
}

Registry::~Registry() { sqlite3_close(db_); }

Status Registry::InsertVm(const VmRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "INSERT INTO vms(name, record) VALUES(?, ?)");
  if (!st.ok()) return Error("prepare insert");
  st.Bind(1, record.spec.name);
  st.Bind(2, record.ToJson().dump());
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_CONSTRAINT) {
    return Status::AlreadyExists("vm " + record.spec.name + " already exists; choose another name");
  }
  if (rc == SQLITE_FULL) return Status::ResourceExhausted("registry " + path_ + ": disk full");
  if (rc != SQLITE_DONE) return Error("insert vm " + record.spec.name);
  return Status::Ok();
}

Status Registry::UpdateVm(const VmRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "UPDATE vms SET record = ? WHERE name = ?");
  if (!st.ok()) return Error("prepare update");
  st.Bind(1, record.ToJson().dump());
  st.Bind(2, record.spec.name);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_FULL) return Status::ResourceExhausted("registry " + path_ + ": disk full");
  if (rc != SQLITE_DONE) return Error("update vm " + record.spec.name);
  if (sqlite3_changes(db_) == 0) return Status::NotFound("vm " + record.spec.name + " is not registered");
  return Status::Ok();
}

Status Registry::DeleteVm(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "DELETE FROM vms WHERE name = ?");
  if (!st.ok()) return Error("prepare delete");
  st.Bind(1, name);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return Error("delete vm " + name);
  return Status::Ok();
}

Result<VmRecord> Registry::GetVm(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT record FROM vms WHERE name = ?");
  if (!st.ok()) return Error("prepare select");
  st.Bind(1, name);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return Status::NotFound("vm " + name + " does not exist");
  if (rc != SQLITE_ROW) return Error("read vm " + name);
  auto j = nlohmann::json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)),
                                 nullptr, false);
  auto rec = VmRecord::FromJson(j);
  if (!rec.ok()) return rec.status().WithContext("registry " + path_ + ", vm " + name);
  return rec;
}

Result<std::vector<VmRecord>> Registry::ListVms() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT name, record FROM vms ORDER BY name");
  if (!st.ok()) return Error("prepare list");
  std::vector<VmRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    auto j = nlohmann::json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1)),
                                   nullptr, false);
    auto rec = VmRecord::FromJson(j);
    if (!rec.ok()) return rec.status().WithContext("registry " + path_ + ", vm " + name);
    out.push_back(std::move(rec).value());
  }
  if (rc != SQLITE_DONE) return Error("list vms");
  return out;
}

Status Registry::InsertObject(const std::string& kind, const std::string& name,
                              const nlohmann::json& j) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "INSERT INTO objects(kind, name, record) VALUES(?, ?, ?)");
  if (!st.ok()) return Error("prepare insert");
  st.Bind(1, kind);
  st.Bind(2, name);
  st.Bind(3, j.dump());
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_CONSTRAINT) {
    return Status::AlreadyExists(kind + " " + name + " already exists; choose another name");
  }
  if (rc == SQLITE_FULL) return Status::ResourceExhausted("registry " + path_ + ": disk full");
  if (rc != SQLITE_DONE) return Error("insert " + kind + " " + name);
  return Status::Ok();
}

Status Registry::PutObject(const std::string& kind, const std::string& name,
                           const nlohmann::json& j) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO objects(kind, name, record) VALUES(?, ?, ?)");
  if (!st.ok()) return Error("prepare put");
  st.Bind(1, kind);
  st.Bind(2, name);
  st.Bind(3, j.dump());
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_FULL) return Status::ResourceExhausted("registry " + path_ + ": disk full");
  if (rc != SQLITE_DONE) return Error("put " + kind + " " + name);
  return Status::Ok();
}

Status Registry::DeleteObject(const std::string& kind, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "DELETE FROM objects WHERE kind = ? AND name = ?");
  if (!st.ok()) return Error("prepare delete");
  st.Bind(1, kind);
  st.Bind(2, name);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return Error("delete " + kind + " " + name);
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, nlohmann::json>>> Registry::ListObjects(
    const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement st(db_, "SELECT name, record FROM objects WHERE kind = ? ORDER BY name");
  if (!st.ok()) return Error("prepare list");
  st.Bind(1, kind);
  std::vector<std::pair<std::string, nlohmann::json>> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    auto j = nlohmann::json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1)),
                                   nullptr, false);
    if (j.is_discarded()) {
      return Status::Corruption("registry " + path_ + ": " + kind + " " + name +
                                " is not valid JSON");
    }
    out.emplace_back(name, std::move(j));
  }
  if (rc != SQLITE_DONE) return Error("list " + kind);
  return out;
}

}  // namespace ferry::vm
