#pragma once

// What the ingest pipeline's tests share: the two projects they send to
// (project 1 without a key limit, project 2 with one), a fresh directory
// for the SQLite database, and the sum of the TSDB counts of one series.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/organizations.hpp"
#include "messages/tsdb_messages.hpp"

namespace vigil::testing {

/// Project 1's key: no key limit.
inline const std::string key_open(32, 'a');
/// Project 2's key: `limited_per_hour` errors per hour.
inline const std::string key_limited(32, '1');

/// Organization 1 ("acme") with projects 1 (key_open) and 2 (key_limited,
/// `limited_per_hour` events per hour).
inline quota_catalog two_project_catalog(int64_t limited_per_hour) {
  quota_catalog catalog;
  catalog.organizations.push_back({1, "acme", 0, 100});
  project_config p1;
  p1.id = 1;
  p1.organization = 1;
  p1.keys.push_back({1, key_open, true, 0, 0});
  project_config p2;
  p2.id = 2;
  p2.organization = 1;
  p2.keys.push_back({3, key_limited, true, limited_per_hour, 3600});
  catalog.projects = {p1, p2};
  return catalog;
}

/// An empty directory under the system's temporary one, named after
/// `name` and this process.
inline std::filesystem::path fresh_test_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path()
             / (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The sum of the counts `xs` give the series (`model`, `key`).
inline int64_t count_of(const std::vector<tsdb_incr>& xs, tsdb_model model,
                        const tsdb_key& key) {
  int64_t n = 0;
  for (auto& x : xs)
    if (x.model == model && x.key.id == key.id && x.key.text == key.text)
      n += x.count;
  return n;
}

} // namespace vigil::testing
