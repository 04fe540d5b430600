// PostgreSQL (libpq) behind sql_connection: statements prepared once per
// connection under generated names, text results converted by column type,
// and every message scrubbed of the password.

#include "adapters/sql.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <unordered_map>

#include <libpq-fe.h>

#include "adapters/resolve.hpp"
#include "config/config.hpp"
#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

// Type OIDs from pg_type.h (stable across PostgreSQL versions).
constexpr Oid bool_oid = 16;
constexpr Oid bytea_oid = 17;
constexpr Oid int8_oid = 20;
constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid oid_oid = 26;
constexpr Oid float4_oid = 700;
constexpr Oid float8_oid = 701;
constexpr Oid numeric_oid = 1700;

struct result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

using result_ptr = std::unique_ptr<PGresult, result_deleter>;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}


// bytea in text form is "\x" and hex digits (bytea_output = hex, the
// default since 9.0; set explicitly on connect).
sql_blob decode_bytea(const char* p, size_t n) {
  sql_blob out;
  if (n >= 2 && p[0] == '\\' && p[1] == 'x') {
    out.bytes.reserve((n - 2) / 2);
    for (size_t i = 2; i + 1 < n; i += 2)
      out.bytes += static_cast<char>(hex_value(p[i]) * 16 + hex_value(p[i + 1]));
  } else {
    out.bytes.assign(p, n);
  }
  return out;
}

class pg_connection final : public sql_connection {
public:
  pg_connection(PGconn* conn, std::string display, std::string password)
    : conn_(conn), display_(std::move(display)),
      password_(std::move(password)) {}

  ~pg_connection() override { PQfinish(conn_); }

  sql_dialect dialect() const override { return sql_dialect::postgresql; }

  const std::string& display_url() const override { return display_; }

  // libpq messages name hosts and users, not passwords; scrub anyway in
  // case a server or a future libpq echoes connection parameters.
  std::string scrub(std::string text) const {
    if (password_.size() >= 1) {
      for (auto pos = text.find(password_); pos != std::string::npos;
           pos = text.find(password_, pos + 8))
        text.replace(pos, password_.size(), "********");
    }
    return text;
  }

  caf::error fail(const PGresult* res, std::string_view what) {
    std::string why = res != nullptr ? PQresultErrorMessage(res) : "";
    if (why.empty())
      why = PQerrorMessage(conn_);
    auto code = errc::command_failed;
    std::string state;
    if (res != nullptr) {
      if (auto s = PQresultErrorField(res, PG_DIAG_SQLSTATE))
        state = s;
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      code = errc::connection_failed;
      cache_.clear();
    } else if (state == "57014") { // query_canceled: statement_timeout
      code = errc::timeout;
    }
    std::string msg = "postgresql ";
    msg += what;
    msg += " failed on ";
    msg += display_;
    if (!state.empty())
      msg += " (SQLSTATE " + state + ")";
    msg += ": ";
    msg += trim(std::move(why));
    return caf::make_error(code, scrub(std::move(msg)));
  }

  // Outside a transaction a broken connection is replaced before use: the
  // server restarting must not take the store down for good.
  caf::error ensure_connected() {
    if (PQstatus(conn_) == CONNECTION_OK)
      return {};
    if (in_tx_)
      return caf::make_error(errc::connection_failed,
                             "postgresql connection to " + display_
                               + " was lost inside a transaction");
    cache_.clear();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      return caf::make_error(errc::connection_failed,
                             scrub("cannot reconnect to " + display_ + ": "
                                   + trim(PQerrorMessage(conn_))));
    return {};
  }

  caf::expected<std::string> prepare(std::string_view sql) {
    std::string key{sql};
    auto i = cache_.find(key);
    if (i != cache_.end())
      return i->second;
    auto name = "vigil_" + std::to_string(++next_name_);
    auto text = sql_to_dollar_params(sql);
    result_ptr res{PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr)};
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK)
      return fail(res.get(), "prepare of '" + key.substr(0, 80) + "'");
    cache_.emplace(std::move(key), name);
    return name;
  }

  caf::expected<sql_rows> query(std::string_view sql,
                                const std::vector<sql_value>& params) override {
    if (auto err = ensure_connected())
      return err;
    auto name = prepare(sql);
    if (!name)
      return std::move(name.error());
    // Text for everything but blobs, which go binary (no escaping).
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      if (std::holds_alternative<std::nullptr_t>(p))
        continue;
      if (auto x = std::get_if<int64_t>(&p)) {
        storage[i] = std::to_string(*x);
      } else if (auto x = std::get_if<double>(&p)) {
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof(buf), *x);
        storage[i].assign(buf, r.ptr);
      } else if (auto x = std::get_if<std::string>(&p)) {
        values[i] = x->c_str();
        lengths[i] = static_cast<int>(x->size());
        continue;
      } else if (auto x = std::get_if<sql_blob>(&p)) {
        values[i] = x->bytes.data();
        lengths[i] = static_cast<int>(x->bytes.size());
        formats[i] = 1;
        continue;
      }
      values[i] = storage[i].c_str();
      lengths[i] = static_cast<int>(storage[i].size());
    }
    result_ptr res{PQexecPrepared(conn_, name->c_str(),
                                  static_cast<int>(params.size()),
                                  values.data(), lengths.data(),
                                  formats.data(), 0)};
    auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      auto err = fail(res.get(), "statement");
      // The server dropped our prepared statements (e.g. DISCARD ALL
      // behind a pooler): forget them so that the next call prepares again.
      if (auto s = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)
                       : nullptr;
          s != nullptr && std::string_view{s} == "26000")
        cache_.erase(std::string{sql});
      return err;
    }
    auto ncols = static_cast<size_t>(PQnfields(res.get()));
    auto nrows = PQntuples(res.get());
    sql_rows rows{ncols};
    for (int r = 0; r < nrows; ++r) {
      for (size_t c = 0; c < ncols; ++c) {
        int col = static_cast<int>(c);
        if (PQgetisnull(res.get(), r, col)) {
          rows.push(nullptr);
          continue;
        }
        auto p = PQgetvalue(res.get(), r, col);
        auto n = static_cast<size_t>(PQgetlength(res.get(), r, col));
        switch (PQftype(res.get(), col)) {
          case int8_oid:
          case int4_oid:
          case int2_oid:
          case oid_oid: {
            int64_t x = 0;
            std::from_chars(p, p + n, x);
            rows.push(x);
            break;
          }
          case float4_oid:
          case float8_oid:
          case numeric_oid:
            rows.push(std::strtod(p, nullptr));
            break;
          case bool_oid:
            rows.push(static_cast<int64_t>(n > 0 && p[0] == 't'));
            break;
          case bytea_oid:
            rows.push(decode_bytea(p, n));
            break;
          default:
            rows.push(std::string(p, n));
        }
      }
    }
    if (status == PGRES_COMMAND_OK || PQcmdTuples(res.get())[0] != '\0') {
      auto tuples = PQcmdTuples(res.get());
      int64_t x = 0;
      std::from_chars(tuples, tuples + std::char_traits<char>::length(tuples),
                      x);
      // SELECT reports its row count too; keep "affected" for changes.
      std::string_view tag = PQcmdStatus(res.get());
      if (tag.rfind("SELECT", 0) != 0)
        rows.affected = x;
    }
    return rows;
  }

  caf::error simple(std::string_view sql, std::string_view what) {
    if (auto err = ensure_connected())
      return err;
    std::string text{sql};
    result_ptr res{PQexec(conn_, text.c_str())};
    auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return fail(res.get(), what);
    return {};
  }

  caf::error exec_script(std::string_view sql) override {
    return simple(sql, "script");
  }

  caf::error begin() override {
    if (auto err = simple("BEGIN", "BEGIN"))
      return err;
    in_tx_ = true;
    return {};
  }

  caf::error commit() override {
    // COMMIT of a transaction that a failed statement aborted answers
    // "ROLLBACK" without an error: report it as the failure it is.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      rollback();
      return caf::make_error(errc::command_failed,
                             "postgresql COMMIT on " + display_
                               + " found the transaction aborted by an "
                                 "earlier error; rolled back");
    }
    auto err = simple("COMMIT", "COMMIT");
    // COMMIT ends the transaction either way (a failed one rolls back).
    in_tx_ = false;
    return err;
  }

  caf::error rollback() override {
    if (!in_tx_ && PQtransactionStatus(conn_) == PQTRANS_IDLE)
      return {};
    in_tx_ = false;
    if (PQstatus(conn_) != CONNECTION_OK)
      return {};
    return simple("ROLLBACK", "ROLLBACK");
  }

  bool in_transaction() const override { return in_tx_; }

private:
  PGconn* conn_;
  std::string display_;
  std::string password_;
  std::unordered_map<std::string, std::string> cache_;
  uint64_t next_name_ = 0;
  bool in_tx_ = false;
};

} // namespace

caf::expected<std::unique_ptr<sql_connection>>
open_postgres(const std::string& url, const sql_options& opts) {
  auto display = mask_url(url);
  // The password as libpq reads it (percent-decoded), to scrub messages.
  std::string password;
  std::string host;
  bool has_hostaddr = false;
  auto resolve_timeout = opts.connect_timeout;
  char* parse_err = nullptr;
  if (auto info = PQconninfoParse(url.c_str(), &parse_err)) {
    for (auto o = info; o->keyword != nullptr; ++o) {
      if (o->val == nullptr)
        continue;
      std::string_view key{o->keyword};
      if (key == "password")
        password = o->val;
      else if (key == "host")
        host = o->val;
      else if (key == "hostaddr")
        has_hostaddr = *o->val != '\0';
      else if (key == "connect_timeout" && std::atoi(o->val) > 0)
        resolve_timeout = std::chrono::seconds{std::atoi(o->val)};
    }
    PQconninfoFree(info);
  } else {
    std::string why = parse_err != nullptr ? trim(parse_err) : "invalid URL";
    PQfreemem(parse_err);
    return caf::make_error(errc::bad_config,
                           "cannot parse the database URL " + display + ": "
                             + why);
  }
  // Our defaults come first: settings in the URL come later and win.
  auto connect_s = std::max<int64_t>(
    1, std::chrono::duration_cast<std::chrono::seconds>(opts.connect_timeout)
         .count());
  auto timeout = std::to_string(connect_s);
  auto options = "-c statement_timeout="
                 + std::to_string(opts.statement_timeout.count())
                 + " -c bytea_output=hex";
  // libpq resolves a host name with a blocking getaddrinfo that
  // connect_timeout does not bound: resolve it here within the timeout and
  // hand libpq the address (it keeps the name for TLS and .pgpass). Socket
  // directories, host lists and an explicit hostaddr are left to libpq.
  std::string hosts;
  std::string hostaddr;
  if (!host.empty() && host.front() != '/' && host.find(',') == std::string::npos
      && !has_hostaddr) {
    auto addresses = resolve_host(host, resolve_timeout);
    if (!addresses)
      return connect_failure(addresses.error(), display);
    // libpq tries the addresses in turn as it would have: one host entry
    // (the same name) per address.
    for (const auto& a : *addresses) {
      hosts += (hosts.empty() ? "" : ",") + host;
      hostaddr += (hostaddr.empty() ? "" : ",") + a;
    }
  }
  const char* keys[] = {"connect_timeout", "options",
                        "fallback_application_name", "dbname",
                        hostaddr.empty() ? nullptr : "host", "hostaddr",
                        nullptr};
  const char* vals[] = {timeout.c_str(), options.c_str(), "vigil",
                        url.c_str(), hosts.c_str(), hostaddr.c_str(),
                        nullptr};
  auto conn = PQconnectdbParams(keys, vals, 1);
  if (conn == nullptr)
    return caf::make_error(errc::connection_failed,
                           "cannot connect to " + display + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = trim(PQerrorMessage(conn));
    PQfinish(conn);
    if (!password.empty())
      for (auto pos = why.find(password); pos != std::string::npos;
           pos = why.find(password, pos + 8))
        why.replace(pos, password.size(), "********");
    return caf::make_error(errc::connection_failed,
                           "cannot connect to " + display + ": " + why);
  }
  // Notices ("table ... does not exist, skipping") would go to stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<sql_connection>{
    std::make_unique<pg_connection>(conn, display, password)};
}

} // namespace vigil
