#include "node/actor_system.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/errors.hpp"
#include "messages/type_ids.hpp"

namespace vigil {

actor_system_config_ext::actor_system_config_ext() {
  add_message_types<caf::id_block::vigil>();
  add_error_category(caf::atom("vigil"),
                     [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                       std::string out = "vigil.";
                       out += to_string(static_cast<errc>(code));
                       if (ctx.size() == 1 && ctx.match_element<std::string>(0))
                         out += ": " + ctx.get_as<std::string>(0);
                       return out;
                     });
  load<caf::io::middleman>();
  set("logger.file-verbosity", caf::atom("quiet"));
  set("logger.console-verbosity", caf::atom("quiet"));
}

} // namespace vigil
