#include "adapters/sql.hpp"

#include <charconv>
#include <cstdlib>

#include "config/config.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i])
      return false;
  }
  return true;
}

std::string print_double(double x) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

} // namespace

const char* to_string(sql_dialect x) {
  return x == sql_dialect::sqlite ? "sqlite" : "postgresql";
}

bool sql_rows::is_null(size_t row, size_t col) const {
  return std::holds_alternative<std::nullptr_t>(at(row, col));
}

int64_t sql_rows::get_int64(size_t row, size_t col) const {
  const auto& v = at(row, col);
  if (auto x = std::get_if<int64_t>(&v))
    return *x;
  if (auto x = std::get_if<double>(&v))
    return static_cast<int64_t>(*x);
  if (auto x = std::get_if<std::string>(&v)) {
    int64_t out = 0;
    std::from_chars(x->data(), x->data() + x->size(), out);
    return out;
  }
  return 0;
}

double sql_rows::get_double(size_t row, size_t col) const {
  const auto& v = at(row, col);
  if (auto x = std::get_if<double>(&v))
    return *x;
  if (auto x = std::get_if<int64_t>(&v))
    return static_cast<double>(*x);
  if (auto x = std::get_if<std::string>(&v))
    return std::strtod(x->c_str(), nullptr);
  return 0;
}

std::string sql_rows::get_text(size_t row, size_t col) const {
  const auto& v = at(row, col);
  if (auto x = std::get_if<std::string>(&v))
    return *x;
  if (auto x = std::get_if<sql_blob>(&v))
    return x->bytes;
  if (auto x = std::get_if<int64_t>(&v))
    return std::to_string(*x);
  if (auto x = std::get_if<double>(&v))
    return print_double(*x);
  return {};
}

std::string sql_rows::take_text(size_t row, size_t col) {
  auto& v = cells_[row * columns_ + col];
  if (auto x = std::get_if<std::string>(&v))
    return std::move(*x);
  if (auto x = std::get_if<sql_blob>(&v))
    return std::move(x->bytes);
  return get_text(row, col);
}

sql_connection::~sql_connection() = default;

caf::expected<std::unique_ptr<sql_connection>>
sql_connection::open(const std::string& url, const sql_options& opts) {
  if (starts_with_ci(url, "sqlite://")) {
    auto path = url.substr(9);
    // Query strings are not read: a '?' would be part of the file name.
    if (path.empty())
      return caf::make_error(errc::bad_config,
                             "database URL '" + url
                               + "' names no file (expected "
                                 "sqlite:///absolute/path or "
                                 "sqlite://relative/path)");
    return open_sqlite(path, url, opts);
  }
  if (starts_with_ci(url, "postgresql://") || starts_with_ci(url, "postgres://"))
    return open_postgres(url, opts);
  return caf::make_error(errc::bad_config,
                         "unsupported database URL '" + mask_url(url)
                           + "' (expected sqlite:///path or "
                             "postgresql://user:password@host:port/db)");
}

caf::expected<int64_t> sql_connection::exec(std::string_view sql,
                                            const std::vector<sql_value>& params) {
  auto rows = query(sql, params);
  if (!rows)
    return std::move(rows.error());
  return rows->affected;
}

sql_transaction::~sql_transaction() {
  if (open_)
    db_.rollback();
}

caf::error sql_transaction::start() {
  auto err = db_.begin();
  open_ = !err;
  return err;
}

caf::error sql_transaction::commit() {
  auto err = db_.commit();
  if (!err)
    open_ = false;
  return err;
}

std::string sql_to_dollar_params(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      // Quoted: copy through the closing quote ('' and "" escape).
      auto end = sql.find(c, i + 1);
      end = end == std::string_view::npos ? sql.size() : end + 1;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      auto end = sql.find('\n', i);
      end = end == std::string_view::npos ? sql.size() : end;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      auto end = sql.find("*/", i + 2);
      end = end == std::string_view::npos ? sql.size() : end + 2;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

} // namespace vigil
