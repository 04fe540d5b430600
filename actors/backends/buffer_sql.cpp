#include "actors/backends/buffer_sql.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "messages/errors.hpp"

namespace vigil {

namespace {

const std::vector<buffer_model>& models() {
  static const std::vector<buffer_model> all{
    {.name = "sentry.group",
     .class_path = "sentry.models.group.Group",
     .table = "groups",
     .filter_columns = {"id"},
     .counter_columns = {"times_seen"},
     .latest_columns = {"last_seen"},
     .insertable = false},
  };
  return all;
}

bool listed(const std::vector<std::string_view>& names, std::string_view x) {
  return std::find(names.begin(), names.end(), x) != names.end();
}

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

// A buffered value as SQL gets it: ints and floats as numbers, a datetime
// as Unix seconds (the schema's double precision timestamps), text as is.
caf::expected<sql_value> to_sql(const buffer_value& v) {
  char* end = nullptr;
  if (v.type == "i") {
    long long x = std::strtoll(v.text.c_str(), &end, 10);
    if (v.text.empty() || *end != '\0')
      return bad("buffer value: not an integer: '" + v.text + "'");
    return sql_value{static_cast<int64_t>(x)};
  }
  if (v.type == "f" || v.type == "dt") {
    double x = std::strtod(v.text.c_str(), &end);
    if (v.text.empty() || *end != '\0')
      return bad("buffer value: not a number: '" + v.text + "'");
    return sql_value{x};
  }
  return sql_value{v.text};
}

// The statements of one take, built once its names are checked.
struct take_sql {
  std::string update;
  std::vector<sql_value> update_params;
  std::string insert;
  std::vector<sql_value> insert_params;
};

caf::expected<take_sql> build(const buffer_model& m, const buffer_incr& sums,
                              sql_dialect d) {
  auto greatest = d == sql_dialect::sqlite ? "max" : "greatest";
  take_sql out;
  std::string sets;
  std::vector<std::string> insert_columns;
  for (const auto& [column, amount] : sums.columns) {
    if (!listed(m.counter_columns, column))
      return bad(std::string{m.name} + ": not a counter column: " + column);
    if (!sets.empty())
      sets += ", ";
    sets += column + " = " + column + " + ?";
    out.update_params.emplace_back(amount);
    insert_columns.push_back(column);
    out.insert_params.emplace_back(amount);
  }
  for (const auto& [column, value] : sums.extra) {
    if (!listed(m.latest_columns, column))
      return bad(std::string{m.name} + ": not an extra column: " + column);
    auto v = to_sql(value);
    if (!v)
      return v.error();
    if (!sets.empty())
      sets += ", ";
    sets += column + " = " + greatest + "(" + column + ", ?)";
    out.update_params.push_back(*v);
    insert_columns.push_back(column);
    out.insert_params.push_back(*v);
  }
  std::string where;
  for (const auto& [column, value] : sums.filters) {
    if (!listed(m.filter_columns, column))
      return bad(std::string{m.name} + ": not a filter column: " + column);
    auto v = to_sql(value);
    if (!v)
      return v.error();
    if (!where.empty())
      where += " AND ";
    where += column + " = ?";
    out.update_params.push_back(*v);
    insert_columns.push_back(column);
    out.insert_params.push_back(*v);
  }
  if (where.empty())
    return bad(std::string{m.name} + ": a buffered row without filters");
  if (sets.empty())
    return out; // nothing to write (a signal-only or empty row)
  out.update = "UPDATE " + std::string{m.table} + " SET " + sets + " WHERE "
               + where;
  std::string cols, marks;
  for (const auto& c : insert_columns) {
    cols += (cols.empty() ? "" : ", ") + c;
    marks += marks.empty() ? "?" : ", ?";
  }
  out.insert = "INSERT INTO " + std::string{m.table} + " (" + cols
               + ") VALUES (" + marks + ") ON CONFLICT DO NOTHING";
  return out;
}

constexpr std::string_view applied_table_sql =
  "CREATE TABLE IF NOT EXISTS vigil_buffer_applied ("
  " take_id varchar(64) NOT NULL PRIMARY KEY,"
  " applied_at double precision NOT NULL)";

constexpr std::string_view record_take_sql =
  "INSERT INTO vigil_buffer_applied (take_id, applied_at) VALUES (?, ?)"
  " ON CONFLICT (take_id) DO NOTHING";

} // namespace

const buffer_model* find_buffer_model(std::string_view name) {
  for (const auto& m : models())
    if (m.name == name)
      return &m;
  return nullptr;
}

caf::error bootstrap_buffer_tables(sql_connection& db) {
  return db.exec_script(applied_table_sql);
}

caf::expected<buffer_apply_result>
apply_buffer_takes(sql_connection& db, const std::vector<buffer_take>& takes,
                   int64_t now) {
  // Check every name before the first write: a bad take changes nothing.
  std::vector<take_sql> statements;
  statements.reserve(takes.size());
  std::vector<const buffer_model*> take_models;
  for (const auto& t : takes) {
    const auto* m = find_buffer_model(t.sums.model);
    if (m == nullptr)
      return bad("buffer: unknown model '" + t.sums.model + "'");
    auto s = build(*m, t.sums, db.dialect());
    if (!s)
      return s.error();
    statements.push_back(std::move(*s));
    take_models.push_back(m);
  }
  buffer_apply_result out;
  std::optional<sql_transaction> tx;
  if (!db.in_transaction()) {
    tx.emplace(db);
    if (auto err = tx->start())
      return err;
  }
  for (size_t i = 0; i < takes.size(); ++i) {
    auto recorded = db.exec(record_take_sql,
                            {takes[i].take_id, static_cast<double>(now)});
    ++out.statements;
    if (!recorded)
      return recorded.error();
    if (*recorded == 0) {
      ++out.already_applied;
      continue;
    }
    const auto& s = statements[i];
    if (s.update.empty() || takes[i].sums.signal_only) {
      ++out.applied;
      continue;
    }
    auto changed = db.exec(s.update, s.update_params);
    ++out.statements;
    if (!changed)
      return changed.error();
    if (*changed == 0 && take_models[i]->insertable) {
      auto inserted = db.exec(s.insert, s.insert_params);
      ++out.statements;
      if (!inserted)
        return inserted.error();
      if (*inserted == 0) { // a racing insert: update the row it made
        changed = db.exec(s.update, s.update_params);
        ++out.statements;
        if (!changed)
          return changed.error();
      }
    } else if (*changed == 0) {
      ++out.dropped;
      continue;
    }
    ++out.applied;
  }
  if (tx)
    if (auto err = tx->commit())
      return err;
  return out;
}

caf::expected<int64_t> forget_applied_takes(sql_connection& db,
                                            int64_t older_than) {
  return db.exec("DELETE FROM vigil_buffer_applied WHERE applied_at < ?",
                 {static_cast<double>(older_than)});
}

} // namespace vigil
