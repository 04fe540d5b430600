// Sentry's nodestore on SQLite or PostgreSQL (see nodestore.hpp).

#include "actors/backends/nodestore.hpp"

#include <algorithm>
#include <cstring>

#include "adapters/zlib.hpp"
#include "messages/base64.hpp"
#include "messages/clock.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr std::string_view create_sql =
  "CREATE TABLE IF NOT EXISTS nodestore_node ("
  " id varchar(40) NOT NULL PRIMARY KEY,"
  " data text NOT NULL,"
  " timestamp double precision NOT NULL);"
  "CREATE INDEX IF NOT EXISTS nodestore_node_timestamp"
  " ON nodestore_node (timestamp);";

constexpr std::string_view upsert_sql =
  "INSERT INTO nodestore_node (id, data, timestamp) VALUES (?, ?, ?)"
  " ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
  " timestamp = excluded.timestamp";

constexpr std::string_view insert_absent_sql =
  "INSERT INTO nodestore_node (id, data, timestamp) VALUES (?, ?, ?)"
  " ON CONFLICT (id) DO NOTHING";

constexpr std::string_view select_sql =
  "SELECT data FROM nodestore_node WHERE id = ?";

constexpr std::string_view delete_sql =
  "DELETE FROM nodestore_node WHERE id = ?";

constexpr std::string_view cleanup_sql =
  "DELETE FROM nodestore_node WHERE timestamp < ?";

// IN lists come in these sizes only (padded by repeating an id), so that
// the statement cache holds three variants, not one per list length.
constexpr size_t in_sizes[] = {1, 10, 100};

std::string in_list_sql(std::string_view head, size_t n) {
  std::string sql{head};
  sql += " IN (";
  for (size_t i = 0; i < n; ++i)
    sql += i == 0 ? "?" : ", ?";
  sql += ")";
  return sql;
}

// Calls `fn(sql, params)` for `ids` in padded chunks.
template <class F>
caf::error for_id_chunks(const std::vector<std::string>& ids,
                         std::string_view head, F fn) {
  size_t i = 0;
  while (i < ids.size()) {
    size_t left = ids.size() - i;
    size_t n = in_sizes[0];
    for (auto s : in_sizes)
      if (n < left)
        n = s;
    size_t take = std::min(n, left);
    std::vector<sql_value> params;
    params.reserve(n);
    for (size_t k = 0; k < n; ++k)
      params.emplace_back(ids[i + std::min(k, take - 1)]);
    if (auto err = fn(in_list_sql(head, n), params))
      return err;
    i += take;
  }
  return {};
}

void append_line(std::string& out, std::string_view json) {
  auto start = out.size();
  out.append(json);
  // The common case (compact JSON) has neither: two vectorized scans
  // instead of a byte loop.
  if (std::memchr(json.data(), '\n', json.size()) == nullptr
      && std::memchr(json.data(), '\r', json.size()) == nullptr)
    return;
  // JSON allows raw CR/LF only as whitespace between tokens: a space
  // means the same and cannot split the blob's lines.
  for (auto i = start; i < out.size(); ++i)
    if (out[i] == '\n' || out[i] == '\r')
      out[i] = ' ';
}

std::string compress_blob(std::string_view blob) {
  return base64_encode(zlib_compress(blob));
}

} // namespace

nodestore::nodestore(sql_connection& db) : db_(&db), now_(now_unix_seconds) {}

caf::expected<std::unique_ptr<nodestore>>
nodestore::open(const std::string& db_url, const sql_options& opts) {
  auto db = sql_connection::open(db_url, opts);
  if (!db)
    return std::move(db.error());
  auto ns = std::make_unique<nodestore>(**db);
  ns->owned_ = std::move(*db);
  if (auto err = ns->bootstrap())
    return err;
  return ns;
}

caf::error nodestore::bootstrap() {
  return db_->exec_script(create_sql);
}

std::string_view nodestore::schema_sql() {
  return create_sql;
}

void nodestore::set_clock(std::function<double()> now) {
  now_ = std::move(now);
}

caf::expected<std::string> nodestore::encode(const node_subkeys& values) {
  std::string blob;
  auto main = values.find(std::nullopt);
  append_line(blob, main != values.end() ? std::string_view{main->second}
                                         : std::string_view{"null"});
  for (const auto& [name, json] : values) {
    if (!name)
      continue;
    if (name->find_first_of("\r\n") != std::string::npos)
      return caf::make_error(errc::malformed,
                             "nodestore subkey names cannot contain a "
                             "newline");
    blob += '\n';
    blob += *name;
    blob += '\n';
    append_line(blob, json);
  }
  return compress_blob(blob);
}

caf::expected<std::optional<std::string>>
nodestore::decode(std::string_view data,
                  const std::optional<std::string>& subkey) {
  auto compressed = base64_decode(data);
  if (!compressed)
    return caf::make_error(errc::malformed,
                           "nodestore data is not base64: "
                             + error_text(compressed.error()));
  auto blob = zlib_decompress(*compressed, max_node_size);
  if (!blob)
    return std::move(blob.error());
  std::string_view rest{*blob};
  // Sentry's legacy pickled nodes (anything not JSON) only exist in
  // databases Sentry wrote long ago.
  if (rest.empty() || rest.front() == '\0'
      || std::strchr("{[\"-0123456789ntf", rest.front()) == nullptr)
    return caf::make_error(errc::unsupported,
                           "nodestore data is not JSON lines (a legacy "
                           "pickled node?)");
  // Lines split as Python's splitlines does for these characters.
  auto next_line = [&rest]() -> std::optional<std::string_view> {
    if (rest.data() == nullptr)
      return std::nullopt;
    auto end = rest.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      auto line = rest;
      rest = std::string_view{};
      return line;
    }
    auto line = rest.substr(0, end);
    size_t skip = 1;
    if (rest[end] == '\r' && end + 1 < rest.size() && rest[end + 1] == '\n')
      skip = 2;
    rest.remove_prefix(end + skip);
    if (rest.empty())
      rest = std::string_view{};
    return line;
  };
  auto main = next_line();
  if (!subkey)
    return main ? std::optional<std::string>{std::string{*main}}
                : std::optional<std::string>{};
  for (;;) {
    auto name = next_line();
    if (!name)
      return std::optional<std::string>{};
    auto value = next_line();
    if (!value)
      return std::optional<std::string>{};
    if (*name == *subkey)
      return std::optional<std::string>{std::string{*value}};
  }
}

caf::error nodestore::write(const std::string& id, const std::string& data) {
  auto n = db_->exec(upsert_sql, {id, data, now_()});
  return n ? caf::error{} : std::move(n.error());
}

caf::expected<std::optional<std::string>>
nodestore::get(const std::string& id, const std::optional<std::string>& subkey) {
  auto rows = db_->query(select_sql, {id});
  if (!rows)
    return std::move(rows.error());
  if (rows->empty())
    return std::optional<std::string>{};
  return decode(rows->take_text(0, 0), subkey);
}

caf::expected<std::map<std::string, std::optional<std::string>>>
nodestore::get_multi(const std::vector<std::string>& ids,
                     const std::optional<std::string>& subkey) {
  std::map<std::string, std::optional<std::string>> out;
  for (const auto& id : ids)
    out.emplace(id, std::nullopt);
  auto err = for_id_chunks(
    ids, "SELECT id, data FROM nodestore_node WHERE id",
    [&](const std::string& sql, const std::vector<sql_value>& params) {
      auto rows = db_->query(sql, params);
      if (!rows)
        return std::move(rows.error());
      for (size_t r = 0; r < rows->size(); ++r) {
        auto value = decode(rows->take_text(r, 1), subkey);
        if (!value)
          return std::move(value.error());
        out[rows->get_text(r, 0)] = std::move(*value);
      }
      return caf::error{};
    });
  if (err)
    return err;
  return out;
}

caf::error nodestore::set(const std::string& id, std::string_view json) {
  return write(id, encode_main(json));
}

caf::error nodestore::set_subkeys(const std::string& id,
                                  const node_subkeys& values) {
  auto data = encode(values);
  if (!data)
    return std::move(data.error());
  return write(id, *data);
}

caf::error nodestore::set_many(
  const std::vector<std::pair<std::string, std::string>>& nodes) {
  std::optional<sql_transaction> tx;
  if (!db_->in_transaction()) {
    tx.emplace(*db_);
    if (auto err = tx->start())
      return err;
  }
  for (const auto& [id, json] : nodes)
    if (auto err = write(id, encode_main(json)))
      return err;
  return tx ? tx->commit() : caf::error{};
}

std::string nodestore::encode_main(std::string_view json) {
  std::string blob;
  append_line(blob, json);
  return compress_blob(blob);
}

caf::expected<bool> nodestore::insert_if_absent(const std::string& id,
                                                std::string_view json) {
  return insert_encoded_if_absent(id, encode_main(json));
}

caf::expected<bool>
nodestore::insert_encoded_if_absent(const std::string& id,
                                    const std::string& data) {
  auto n = db_->exec(insert_absent_sql, {id, data, now_()});
  if (!n)
    return std::move(n.error());
  return *n > 0;
}

caf::error nodestore::delete_one(const std::string& id) {
  auto n = db_->exec(delete_sql, {id});
  return n ? caf::error{} : std::move(n.error());
}

caf::error nodestore::delete_multi(const std::vector<std::string>& ids) {
  return for_id_chunks(
    ids, "DELETE FROM nodestore_node WHERE id",
    [&](const std::string& sql, const std::vector<sql_value>& params) {
      auto n = db_->exec(sql, params);
      return n ? caf::error{} : std::move(n.error());
    });
}

caf::expected<int64_t>
nodestore::cleanup(std::chrono::system_clock::time_point cutoff) {
  using namespace std::chrono;
  double t = duration<double>(cutoff.time_since_epoch()).count();
  return db_->exec(cleanup_sql, {t});
}

} // namespace vigil
