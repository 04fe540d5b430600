#include "cli/filestore_commands.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "actors/filestore.hpp"
#include "messages/json_writer.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

std::unique_ptr<filestore_backend> open_store(const config& cfg,
                                              const char* command) {
  auto b = make_filestore_backend(cfg);
  if (!b) {
    std::cerr << "vigil filestore " << command << ": "
              << error_text(b.error()) << "\n";
    return nullptr;
  }
  return std::move(*b);
}

int failed(const char* command, const caf::error& err) {
  std::cerr << "vigil filestore " << command << ": " << error_text(err)
            << "\n";
  return 1;
}

} // namespace

int filestore_put_command(const config& cfg,
                          const filestore_command_options& o) {
  auto store = open_store(cfg, "put");
  if (!store)
    return 2;
  std::string data;
  if (o.file == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    data = ss.str();
  } else {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) {
      std::cerr << "vigil filestore put: cannot read " << o.file << "\n";
      return 2;
    }
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (auto err = store->put(o.key, data, o.content_type))
    return failed("put", err);
  return 0;
}

int filestore_get_command(const config& cfg,
                          const filestore_command_options& o) {
  auto store = open_store(cfg, "get");
  if (!store)
    return 2;
  auto data = store->get(o.key);
  if (!data)
    return failed("get", data.error());
  if (o.file == "-") {
    std::cout.write(data->data(), static_cast<std::streamsize>(data->size()));
    std::cout.flush();
    return std::cout ? 0 : 1;
  }
  std::ofstream out(o.file, std::ios::binary | std::ios::trunc);
  out.write(data->data(), static_cast<std::streamsize>(data->size()));
  out.close();
  if (!out) {
    std::cerr << "vigil filestore get: cannot write " << o.file << "\n";
    return 1;
  }
  return 0;
}

int filestore_rm_command(const config& cfg,
                         const filestore_command_options& o) {
  auto store = open_store(cfg, "rm");
  if (!store)
    return 2;
  if (auto err = store->remove(o.key))
    return failed("rm", err);
  return 0;
}

int filestore_exists_command(const config& cfg,
                             const filestore_command_options& o) {
  auto store = open_store(cfg, "exists");
  if (!store)
    return 2;
  auto yes = store->exists(o.key);
  if (!yes)
    return failed("exists", yes.error());
  std::cout << (*yes ? "yes" : "no") << "\n";
  return *yes ? 0 : 1;
}

int filestore_ls_command(const config& cfg,
                         const filestore_command_options& o) {
  auto store = open_store(cfg, "ls");
  if (!store)
    return 2;
  auto files = store->list(o.key);
  if (!files)
    return failed("ls", files.error());
  if (o.json) {
    auto out = nlohmann::json::array();
    for (const auto& f : *files)
      out.push_back({{"key", f.key}, {"size", f.size}});
    std::cout << dump_json(out) << "\n";
  } else {
    for (const auto& f : *files)
      std::cout << f.size << " " << f.key << "\n";
  }
  return std::cout ? 0 : 1;
}

} // namespace vigil
