#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace vigil {

/// Options of `vigil send-task`.
struct send_task_options {
  std::string name;
  std::string args_json = "[]";
  std::string kwargs_json = "{}";
  std::string queue;    // "" = tasks.default-queue
  double countdown = 0; // seconds
  double expires = 0;   // seconds from now; 0 = never
  int priority = 0;
  std::string serializer = "msgpack"; // or json
};

/// `vigil send-task`: publishes one task and prints its id. Returns the exit
/// code (2 for bad input, 1 when the broker fails).
int send_task_command(const config& cfg, const send_task_options& opts);

/// `vigil dead-letters list`: prints dead letters (optionally of one queue)
/// as a table or, with `json`, one JSON array.
int dead_letters_list_command(const config& cfg, const std::string& queue,
                              bool json);

/// `vigil dead-letters replay ID|--all`: requeues dead letters.
int dead_letters_replay_command(const config& cfg, const std::string& id,
                                bool all);

/// `vigil config get KEY`: prints the effective value, secrets masked.
int config_get_command(const config& cfg, const std::string& key);

/// `vigil config validate`: checks the file and environment; prints every
/// problem, one per line, and returns 1 if there is any.
int config_validate_command(const std::string& path);

} // namespace vigil
