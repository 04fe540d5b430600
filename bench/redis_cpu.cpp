#include "bench/redis_cpu.hpp"

#include <chrono>
#include <cstdlib>
#include <string_view>

#include "adapters/redis.hpp"

namespace vigil {

double redis_cpu_seconds(const std::string& url) {
  auto ep = parse_redis_url(url);
  if (!ep)
    return -1;
  auto conn = redis_connection::connect(*ep, std::chrono::seconds{2});
  if (!conn)
    return -1;
  auto info = conn->command({"INFO", "cpu"});
  if (!info)
    return -1;
  std::string_view text = info->as_string();
  double total = 0;
  for (std::string_view field : {"used_cpu_sys:", "used_cpu_user:"}) {
    auto at = text.find(field);
    if (at == std::string_view::npos)
      return -1;
    total += std::atof(std::string{text.substr(at + field.size(), 20)}.c_str());
  }
  return total;
}

} // namespace vigil
