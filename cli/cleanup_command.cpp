#include "cli/cleanup_command.hpp"

#include <chrono>
#include <iostream>

#include "actors/filestore.hpp"
#include "actors/retention.hpp"
#include "messages/errors.hpp"

namespace vigil {

int cleanup_command(const config& cfg, double days) {
  auto files = make_filestore_backend(cfg);
  if (!files) {
    std::cerr << "vigil cleanup: " << error_text(files.error()) << "\n";
    return 2;
  }
  auto url = effective_db_url(cfg.get_string("db.url"),
                              cfg.get_string("node.data-dir"));
  auto store = event_store::open(
    url, make_sql_options(cfg.get_string("db.sqlite-synchronous")));
  if (!store) {
    std::cerr << "vigil cleanup: " << error_text(store.error()) << "\n";
    return 1;
  }
  using namespace std::chrono;
  auto now = duration<double>(system_clock::now().time_since_epoch()).count();
  auto done = run_cleanup(**store, files->get(), now - days * 86400.0);
  if (!done) {
    std::cerr << "vigil cleanup: " << error_text(done.error()) << "\n";
    return 1;
  }
  std::cout << "removed " << done->nodes << " events and "
            << done->attachments << " attachments stored before "
            << days << " days ago\n";
  return 0;
}

} // namespace vigil
