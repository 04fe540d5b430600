// The filesystem filestore: one file per key under `location`.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/backends/filestore.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

namespace fs = std::filesystem;

caf::error sys_error(const std::string& what, const fs::path& p) {
  return caf::make_error(errc::command_failed, what + " " + p.string() + ": "
                                                 + std::strerror(errno));
}

// Writes all of `data` to `fd`, retrying short writes and EINTR.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// fsyncs a directory so that a rename into it survives a power cut.
void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Temporary names start with ".tmp-" and are never valid keys' last
// segments to list; they are left only by a crash mid-write.
std::string temp_name() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream os;
  os << ".tmp-" << std::hex << rng();
  return os.str();
}

class filesystem_filestore final : public filestore_backend {
public:
  explicit filesystem_filestore(fs::path root) : root_(std::move(root)) {}

  std::string describe() const override {
    return "filesystem " + root_.string();
  }

  caf::error put(const std::string& key, std::string_view data,
                 const std::string&) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto target = root_ / key;
    auto dir = target.parent_path();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
      return caf::make_error(errc::command_failed, "cannot create "
                                                     + dir.string() + ": "
                                                     + ec.message());
    auto tmp = dir / temp_name();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0644);
    if (fd < 0)
      return sys_error("cannot create", tmp);
    if (!write_all(fd, data) || ::fsync(fd) != 0) {
      auto err = sys_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    if (::close(fd) != 0) {
      auto err = sys_error("cannot close", tmp);
      ::unlink(tmp.c_str());
      return err;
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      auto err = sys_error("cannot rename into", target);
      ::unlink(tmp.c_str());
      return err;
    }
    sync_dir(dir);
    return {};
  }

  caf::expected<std::string> get(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto path = root_ / key;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
        return caf::make_error(errc::not_found, "no file " + key);
      return sys_error("cannot open", path);
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      return caf::make_error(errc::not_found, "no file " + key);
    }
    std::string out;
    char buf[65536];
    for (;;) {
      auto n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        auto err = sys_error("cannot read", path);
        ::close(fd);
        return err;
      }
      if (n == 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  caf::error remove(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto path = root_ / key;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
      return sys_error("cannot remove", path);
    return {};
  }

  caf::expected<bool> exists(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    std::error_code ec;
    return fs::is_regular_file(root_ / key, ec);
  }

  caf::expected<std::vector<filestore_entry>>
  list(const std::string& prefix) override {
    std::vector<filestore_entry> out;
    std::error_code ec;
    fs::recursive_directory_iterator it{root_, ec}, end;
    if (ec)
      return caf::make_error(errc::command_failed,
                             "cannot list " + root_.string() + ": "
                               + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec)
        return caf::make_error(errc::command_failed,
                               "cannot list " + root_.string() + ": "
                                 + ec.message());
      if (!it->is_regular_file(ec)
          || it->path().filename().string().starts_with(".tmp-"))
        continue;
      auto key = it->path().lexically_relative(root_).generic_string();
      if (!key.starts_with(prefix))
        continue;
      auto size = it->file_size(ec);
      out.push_back({std::move(key), ec ? 0 : static_cast<uint64_t>(size)});
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    return out;
  }

private:
  fs::path root_;
};

} // namespace

caf::expected<std::unique_ptr<filestore_backend>>
make_filesystem_filestore(const std::string& location) {
  if (location.empty())
    return caf::make_error(errc::bad_config,
                           "filestore.options.location is empty");
  std::error_code ec;
  fs::create_directories(location, ec);
  if (ec)
    return caf::make_error(errc::bad_config,
                           "filestore.options.location " + location
                             + " cannot be created: " + ec.message());
  return std::unique_ptr<filestore_backend>(
    new filesystem_filestore(fs::path(location)));
}

} // namespace vigil
