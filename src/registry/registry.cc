#include "registry/registry.h"

#include <sqlite3.h>

namespace ferry::registry {

namespace {

// RAII for a prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() { return stmt_; }
  bool ok() const { return stmt_ != nullptr; }
  void Bind(int i, std::string_view s) {
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
  MutexLock lock(mu_);
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
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW)
      return damaged("is not a SQLite database");
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
    FERRY_RETURN_IF_ERROR(
        reg->Exec("PRAGMA journal_mode=WAL;"
                  "PRAGMA application_id=" +
                  std::to_string(kApplicationId) +
                  ";"
                  "PRAGMA user_version=" +
                  std::to_string(kSchemaVersion) +
                  ";"
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
    FERRY_RETURN_IF_ERROR(
        reg->Exec("CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, name TEXT NOT NULL, "
                  "record TEXT NOT NULL, PRIMARY KEY (kind, name));"
                  "PRAGMA user_version=2;"));
  }
  FERRY_RETURN_IF_ERROR(reg->Exec("PRAGMA synchronous=NORMAL;"));
  return reg;
}

Registry::~Registry() { sqlite3_close(db_); }

Result<nlohmann::json> Registry::Parse(std::string_view kind, const std::string& name,
                                       const char* text) {
  auto j = nlohmann::json::parse(text ? text : "", nullptr, false);
  if (j.is_discarded()) {
    return Status::Corruption("registry " + path_ + ": " + std::string(kind) + " " + name +
                              " is not valid JSON");
  }
  return j;
}

Result<int> Registry::Change(std::string_view kind, const std::string& name,
                             const nlohmann::json* row, const char* sql_vms,
                             const char* sql_objects, const std::string& what) {
  const bool vms = kind == kVmKind;
  MutexLock lock(mu_);
  Statement st(db_, vms ? sql_vms : sql_objects);
  if (!st.ok()) return Error("prepare " + what);
  // Parameters: ?1 kind (objects only), ?2 name, ?3 the row's text.
  if (!vms) st.Bind(1, kind);
  st.Bind(2, name);
  if (row) st.Bind(3, row->dump());
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_CONSTRAINT) {
    return Status::AlreadyExists(std::string(kind) + " " + name +
                                 " already exists; choose another name");
  }
  if (rc == SQLITE_FULL) return Status::ResourceExhausted("registry " + path_ + ": disk full");
  if (rc != SQLITE_DONE) return Error(what);
  return sqlite3_changes(db_);
}

Status Registry::Insert(std::string_view kind, const std::string& name, const nlohmann::json& row) {
  return Change(kind, name, &row, "INSERT INTO vms(name, record) VALUES(?2, ?3)",
                "INSERT INTO objects(kind, name, record) VALUES(?1, ?2, ?3)",
                "insert " + std::string(kind) + " " + name)
      .status();
}

Status Registry::Update(std::string_view kind, const std::string& name, const nlohmann::json& row) {
  FERRY_ASSIGN_OR_RETURN(int changed,
                         Change(kind, name, &row, "UPDATE vms SET record = ?3 WHERE name = ?2",
                                "UPDATE objects SET record = ?3 WHERE kind = ?1 AND name = ?2",
                                "update " + std::string(kind) + " " + name));
  if (changed == 0) return Status::NotFound(std::string(kind) + " " + name + " is not registered");
  return Status::Ok();
}

Status Registry::Put(std::string_view kind, const std::string& name, const nlohmann::json& row) {
  return Change(kind, name, &row, "INSERT OR REPLACE INTO vms(name, record) VALUES(?2, ?3)",
                "INSERT OR REPLACE INTO objects(kind, name, record) VALUES(?1, ?2, ?3)",
                "put " + std::string(kind) + " " + name)
      .status();
}

Status Registry::Delete(std::string_view kind, const std::string& name) {
  return Change(kind, name, nullptr, "DELETE FROM vms WHERE name = ?2",
                "DELETE FROM objects WHERE kind = ?1 AND name = ?2",
                "delete " + std::string(kind) + " " + name)
      .status();
}

Result<std::optional<nlohmann::json>> Registry::Get(std::string_view kind,
                                                    const std::string& name) {
  const bool vms = kind == kVmKind;
  std::string text;
  {
    MutexLock lock(mu_);
    Statement st(db_, vms ? "SELECT record FROM vms WHERE name = ?2"
                          : "SELECT record FROM objects WHERE kind = ?1 AND name = ?2");
    if (!st.ok()) return Error("prepare select");
    if (!vms) st.Bind(1, kind);
    st.Bind(2, name);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) return std::optional<nlohmann::json>();
    if (rc != SQLITE_ROW) return Error("read " + std::string(kind) + " " + name);
    text = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
  }
  FERRY_ASSIGN_OR_RETURN(nlohmann::json row, Parse(kind, name, text.c_str()));
  return std::optional<nlohmann::json>(std::move(row));
}

Result<std::vector<std::pair<std::string, nlohmann::json>>> Registry::List(std::string_view kind) {
  const bool vms = kind == kVmKind;
  std::vector<std::pair<std::string, std::string>> texts;
  {
    MutexLock lock(mu_);
    Statement st(db_, vms ? "SELECT name, record FROM vms ORDER BY name"
                          : "SELECT name, record FROM objects WHERE kind = ?1 ORDER BY name");
    if (!st.ok()) return Error("prepare list");
    if (!vms) st.Bind(1, kind);
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      texts.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)),
                         reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1)));
    }
    if (rc != SQLITE_DONE) return Error("list " + std::string(kind));
  }
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (auto& [name, text] : texts) {
    FERRY_ASSIGN_OR_RETURN(nlohmann::json row, Parse(kind, name, text.c_str()));
    out.emplace_back(std::move(name), std::move(row));
  }
  return out;
}

}  // namespace ferry::registry
