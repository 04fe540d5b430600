#pragma once

// The servers a test case needs, and how a case says it could not run.
//
// tests/run_all.py starts redis-server, rabbitmq-server and PostgreSQL and
// exports their URLs (VIGIL_TEST_REDIS_URL, VIGIL_TEST_AMQP_URL,
// VIGIL_TEST_PG_URL). A case that needs a server the run does not have
// still runs the rest of its checks, and reports itself as skipped: it
// appends "<test case>\t<reason>" to the file VIGIL_TEST_SKIP_LOG names,
// which the runner reads to count it as skipped rather than passed (and
// scripts/test.sh fails the run, as CI starts every server).

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

namespace vigil::testing {

/// Reports the running test case as skipped, for `reason`.
inline void report_skipped(const std::string& reason) {
  WARN("skipped: " << reason);
  const char* log = std::getenv("VIGIL_TEST_SKIP_LOG");
  if (log == nullptr || *log == '\0')
    return;
  std::ofstream out{log, std::ios::app};
  out << Catch::getResultCapture().getCurrentTestName() << '\t' << reason
      << '\n';
}

/// The URL in the environment variable `var`; "" after reporting the
/// running case as skipped when the run has no such server.
inline std::string test_server_url(const char* var) {
  const char* url = std::getenv(var);
  if (url == nullptr || *url == '\0') {
    report_skipped(std::string{var} + " is not set");
    return {};
  }
  return url;
}

} // namespace vigil::testing
