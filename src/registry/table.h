// A typed table of the registry: the rows of one kind, written from Row::ToJson() and read back
// through Row::FromJson(name, json). A row that is not what ferryd wrote is an error naming the
// registry, the kind and the name, never a row of defaults.
//
// What a Row provides:
//   static constexpr std::string_view kKind;     the kind it is stored under ("snapshot", ...)
//   nlohmann::json ToJson() const;
//   static Result<Row> FromJson(const std::string& name, const nlohmann::json& j);
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "registry/registry.h"

namespace ferry::registry {

template <typename Row>
class Table {
 public:
  explicit Table(Registry& registry) : registry_(registry) {}

  Status Insert(const std::string& name, const Row& row) {
    return registry_.Insert(Row::kKind, name, row.ToJson());
  }
  Status Update(const std::string& name, const Row& row) {
    return registry_.Update(Row::kKind, name, row.ToJson());
  }
  Status Put(const std::string& name, const Row& row) {
    return registry_.Put(Row::kKind, name, row.ToJson());
  }
  Status Delete(const std::string& name) { return registry_.Delete(Row::kKind, name); }

  // The row, nullopt if there is none.
  Result<std::optional<Row>> Find(const std::string& name) {
    FERRY_ASSIGN_OR_RETURN(auto j, registry_.Get(Row::kKind, name));
    if (!j) return std::optional<Row>();
    FERRY_ASSIGN_OR_RETURN(Row row, Decode(name, *j));
    return std::optional<Row>(std::move(row));
  }
  // Every row, by name; a damaged row fails the whole list.
  Result<std::vector<std::pair<std::string, Row>>> List() {
    return List([](const Status&) { return false; });
  }
  // Every row that reads, by name. `on_damaged` is told of each row that does not, and says
  // whether to go on without it (true) or fail the list with its error (false): where one
  // damaged row must not hide the others (a start-up recovery that logs and leaves it).
  Result<std::vector<std::pair<std::string, Row>>> List(
      const std::function<bool(const Status&)>& on_damaged) {
    FERRY_ASSIGN_OR_RETURN(auto rows, registry_.List(Row::kKind));
    std::vector<std::pair<std::string, Row>> out;
    out.reserve(rows.size());
    for (auto& [name, j] : rows) {
      auto row = Decode(name, j);
      if (!row.ok()) {
        if (on_damaged(row.status())) continue;
        return row.status();
      }
      out.emplace_back(std::move(name), std::move(row).value());
    }
    return out;
  }

 private:
  Result<Row> Decode(const std::string& name, const nlohmann::json& j) {
    auto row = Row::FromJson(name, j);
    if (!row.ok()) {
      return Status::Corruption("registry " + registry_.path() + ", " + std::string(Row::kKind) +
                                " " + name + ": " + row.status().message());
    }
    return row;
  }

  Registry& registry_;
};

}  // namespace ferry::registry
