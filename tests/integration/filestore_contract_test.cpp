// The filestore's contract, run against the filesystem backend and, when
// the run has one (VIGIL_TEST_S3_URL: tests/run_all.py starts s3rver), the
// s3 backend: round trips, overwrites,
// missing keys, key checks, binary bytes, multipart uploads; plus each
// backend's own guarantees (no partial file after a crash; errors that
// never show the secret).

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>

#include "actors/backends/filestore.hpp"
#include "actors/filestore.hpp"
#include "messages/errors.hpp"
#include "tests/support/test_servers.hpp"

using namespace vigil;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() {
  static std::atomic<int> counter{0};
  auto dir = fs::temp_directory_path()
             / ("vigil-filestore-" + std::to_string(::getpid()) + "-"
                + std::to_string(++counter));
  fs::remove_all(dir);
  return dir.string();
}

filestore_s3_options s3_options(const std::string& url) {
  filestore_s3_options o;
  o.endpoint_url = url;
  o.bucket_name = "vigil-test";
  o.access_key = "S3RVER";
  o.secret_key = "S3RVER";
  o.timeout = std::chrono::seconds{20};
  o.attempts = 3;
  o.backoff = std::chrono::milliseconds{50};
  return o;
}

struct named_backend {
  std::string name;
  std::unique_ptr<filestore_backend> store;
};

std::vector<named_backend> backends() {
  std::vector<named_backend> out;
  auto fsb = make_filesystem_filestore(temp_dir());
  REQUIRE(fsb);
  out.push_back({"filesystem", std::move(*fsb)});
  if (auto url = vigil::testing::test_server_url("VIGIL_TEST_S3_URL");
      !url.empty()) {
    auto s3 = make_s3_filestore(s3_options(url));
    REQUIRE(s3);
    out.push_back({"s3", std::move(*s3)});
  }
  return out;
}

// A key no earlier case or run used.
std::string fresh_key(const std::string& stem) {
  static std::atomic<int> counter{0};
  return "contract/" + std::to_string(::getpid()) + "/"
         + std::to_string(++counter) + "/" + stem;
}

std::string binary_blob(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return s;
}

} // namespace

TEST_CASE("filestore: put, get, exists, remove", "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    auto key = fresh_key("a b+c.txt");
    auto before = b.store->exists(key);
    REQUIRE(before);
    CHECK_FALSE(*before);
    REQUIRE_FALSE(b.store->put(key, "hello", "text/plain"));
    auto now = b.store->exists(key);
    REQUIRE(now);
    CHECK(*now);
    auto got = b.store->get(key);
    REQUIRE(got);
    CHECK(*got == "hello");
    REQUIRE_FALSE(b.store->put(key, "bye", "text/plain"));
    got = b.store->get(key);
    REQUIRE(got);
    CHECK(*got == "bye");
    REQUIRE_FALSE(b.store->remove(key));
    now = b.store->exists(key);
    REQUIRE(now);
    CHECK_FALSE(*now);
    // Removing again is not an error.
    CHECK_FALSE(b.store->remove(key));
  }
}

TEST_CASE("filestore: list finds the keys under a prefix, in order",
          "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    auto stem = fresh_key("listing");
    auto dir = stem + "/";
    // '&' and '+' survive S3's XML answer and the query's encoding.
    std::vector<std::string> keys = {dir + "b/2.bin", dir + "a&b+c.txt",
                                     dir + "b/1.bin"};
    for (size_t i = 0; i < keys.size(); ++i)
      REQUIRE_FALSE(b.store->put(keys[i], std::string(i + 1, 'x'), ""));
    // Shares the prefix without its '/': not listed.
    REQUIRE_FALSE(b.store->put(stem + "-sibling.txt", "y", ""));
    auto all = b.store->list(dir);
    REQUIRE(all);
    REQUIRE(all->size() == 3);
    CHECK((*all)[0].key == dir + "a&b+c.txt");
    CHECK((*all)[0].size == 2);
    CHECK((*all)[1].key == dir + "b/1.bin");
    CHECK((*all)[1].size == 3);
    CHECK((*all)[2].key == dir + "b/2.bin");
    CHECK((*all)[2].size == 1);
    auto sub = b.store->list(dir + "b/");
    REQUIRE(sub);
    CHECK(sub->size() == 2);
    auto none = b.store->list(dir + "nothing-here/");
    REQUIRE(none);
    CHECK(none->empty());
  }
}

TEST_CASE("filestore: a missing key is not_found", "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    auto got = b.store->get(fresh_key("never-written"));
    REQUIRE_FALSE(got);
    CHECK(got.error() == errc::not_found);
  }
}

TEST_CASE("filestore: binary bytes and an empty file round-trip",
          "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    auto blob = binary_blob(300 * 1024);
    auto key = fresh_key("blob.bin");
    REQUIRE_FALSE(b.store->put(key, blob, ""));
    auto got = b.store->get(key);
    REQUIRE(got);
    CHECK(*got == blob);
    auto empty = fresh_key("empty");
    REQUIRE_FALSE(b.store->put(empty, "", "text/plain"));
    got = b.store->get(empty);
    REQUIRE(got);
    CHECK(got->empty());
  }
}

TEST_CASE("filestore: a put above 8 MiB goes in parts and reads back whole",
          "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    auto blob = binary_blob(17 * 1024 * 1024 + 123);
    auto key = fresh_key("big.bin");
    auto err = b.store->put(key, blob, "application/octet-stream");
    REQUIRE_FALSE(err);
    auto got = b.store->get(key);
    REQUIRE(got);
    CHECK(got->size() == blob.size());
    CHECK(*got == blob);
  }
}

TEST_CASE("filestore: keys that could escape the store are rejected",
          "[filestore]") {
  for (auto& b : backends()) {
    INFO(b.name);
    for (std::string key :
         {std::string{""}, std::string{"/etc/passwd"}, std::string{"../x"},
          std::string{"a/../../x"}, std::string{"a//b"}, std::string{"a/"},
          std::string{"./a"}, std::string{"a\\b"},
          std::string{"a\0b", 3}}) {
      INFO(key);
      auto err = b.store->put(key, "x", "");
      REQUIRE(err);
      CHECK(err == errc::malformed);
      auto got = b.store->get(key);
      REQUIRE_FALSE(got);
      CHECK(got.error() == errc::malformed);
    }
  }
}

TEST_CASE("filesystem filestore: a write killed midway leaves no partial "
          "file under its name",
          "[filestore]") {
  auto dir = temp_dir();
  auto blob = binary_blob(64 * 1024 * 1024);
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto store = make_filesystem_filestore(dir);
    if (!store)
      ::_exit(2);
    // Tell the parent the write starts, then write until killed.
    (void) !::write(pipefd[1], "g", 1);
    for (int i = 0;; ++i)
      (void) (*store)->put("victim/file.bin", blob, "");
  }
  ::close(pipefd[1]);
  char c;
  REQUIRE(::read(pipefd[0], &c, 1) == 1);
  ::close(pipefd[0]);
  // Wait until a temporary file exists: the child is mid-write.
  auto victim_dir = fs::path(dir) / "victim";
  for (;;) {
    std::error_code ec;
    bool seen = false;
    for (auto& e : fs::directory_iterator(victim_dir, ec))
      if (e.path().filename().string().starts_with(".tmp-"))
        seen = true;
    if (seen)
      break;
    ::usleep(1000);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  auto store = make_filesystem_filestore(dir);
  REQUIRE(store);
  auto got = (*store)->get("victim/file.bin");
  if (got)
    CHECK(*got == blob); // a complete earlier write, never a part
  else
    CHECK(got.error() == errc::not_found);
  fs::remove_all(dir);
}

TEST_CASE("s3 filestore: missing credentials and bucket are named",
          "[filestore]") {
  filestore_s3_options o;
  o.bucket_name = "b";
  auto r = make_s3_filestore(o);
  REQUIRE_FALSE(r);
  CHECK(error_text(r.error()).find("access_key") != std::string::npos);
  CHECK(error_text(r.error()).find("instance credentials")
        != std::string::npos);
  o.access_key = "k";
  o.secret_key = "s";
  o.bucket_name.clear();
  r = make_s3_filestore(o);
  REQUIRE_FALSE(r);
  CHECK(error_text(r.error()).find("bucket_name") != std::string::npos);
}

TEST_CASE("s3 filestore: a refused connection is retried, then fails "
          "without the secret",
          "[filestore]") {
  // Port 1 on loopback: nothing listens there.
  auto o = s3_options("http://127.0.0.1:1");
  o.secret_key = "TOP-SECRET-VALUE-123";
  o.attempts = 2;
  o.backoff = std::chrono::milliseconds{10};
  auto s3 = make_s3_filestore(o);
  REQUIRE(s3);
  auto err = (*s3)->put("k", "v", "");
  REQUIRE(err);
  CHECK(err == errc::connection_failed);
  auto text = error_text(err);
  CHECK(text.find("2 tries") != std::string::npos);
  CHECK(text.find("TOP-SECRET") == std::string::npos);
  CHECK((*s3)->describe().find("TOP-SECRET") == std::string::npos);
}

// s3rver 3.7.1 checks that the access key exists but does not verify a
// SigV4 signature (its authentication middleware leaves v4 unimplemented):
// the server-side check here is the key's, and the error text is ours.
TEST_CASE("s3 filestore: an unknown access key is refused by the server, "
          "and the error does not show the secret",
          "[filestore]") {
  auto url = vigil::testing::test_server_url("VIGIL_TEST_S3_URL");
  if (url.empty())
    return;
  auto o = s3_options(url);
  o.access_key = "NOT-A-KEY";
  o.secret_key = "WRONG-SECRET-456";
  auto s3 = make_s3_filestore(o);
  REQUIRE(s3);
  auto err = (*s3)->put(fresh_key("denied"), "v", "");
  REQUIRE(err);
  CHECK(error_text(err).find("403") != std::string::npos);
  CHECK(error_text(err).find("InvalidAccessKeyId") != std::string::npos);
  CHECK(error_text(err).find("WRONG-SECRET") == std::string::npos);
}

TEST_CASE("filestore actor: put, get, exists, delete through messages",
          "[filestore]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto b = make_filesystem_filestore(temp_dir());
  REQUIRE(b);
  auto fs_actor = sys.spawn<caf::detached>(
    filestore_service, std::shared_ptr<filestore_backend>(std::move(*b)));
  caf::scoped_actor self{sys};
  auto t = std::chrono::seconds{10};
  bool ok = false;
  self->request(fs_actor, t, filestore_put{"a/b.txt", "bytes", "text/plain"})
    .receive([&](bool x) { ok = x; }, [&](caf::error&) { ok = false; });
  CHECK(ok);
  std::string got;
  self->request(fs_actor, t, caf::get_atom_v, std::string{"a/b.txt"})
    .receive([&](std::string& x) { got = x; }, [&](caf::error&) {});
  CHECK(got == "bytes");
  caf::error missing;
  self->request(fs_actor, t, caf::get_atom_v, std::string{"a/none"})
    .receive([&](std::string&) {}, [&](caf::error& e) { missing = e; });
  CHECK(missing == errc::not_found);
  self->request(fs_actor, t, caf::delete_atom_v, std::string{"a/b.txt"})
    .receive([&](bool) {}, [&](caf::error&) {});
  bool there = true;
  self->request(fs_actor, t, exists_atom_v, std::string{"a/b.txt"})
    .receive([&](bool x) { there = x; }, [&](caf::error&) {});
  CHECK_FALSE(there);
  self->send_exit(fs_actor, caf::exit_reason::user_shutdown);
}
