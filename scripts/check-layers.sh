#!/usr/bin/env bash
# The layer check: every folder of vigil's sources includes only the folders
# below it, and only adapters/ includes the C client libraries' headers (and
# Boost.Beast/Asio). docs/ARCHITECTURE.md explains the layers. Prints each
# violation as "file:line: #include ...: rule" and exits 1 if there is any.
# tests/ is not checked: tests may reach any layer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Lowest first: a folder may include itself and the folders before it.
layers=(messages config tasks adapters actors web node bench cli)

# C client headers (and Beast/Asio): adapters/ only.
client_headers='hiredis/|amqp\.h|amqp_[a-z_]*\.h|rabbitmq-c/|libpq-fe\.h|sqlite3\.h|zlib\.h|isa-l/|isa-l\.h|boost/beast|boost/asio'

# Known client-header includes outside adapters/, as "file <header>". Each
# parses hiredis replies (redisReply, REDIS_REPLY_*) itself; issue 14 part 2
# gives adapters/redis a reply type of its own and removes these. Do not add
# to this list: move the code into adapters/ instead.
known_exceptions=(
  "actors/cron_scheduler.cpp <hiredis/hiredis.h>"
  "actors/backends/broker_redis.cpp <hiredis/hiredis.h>"
  "actors/backends/quota_redis.cpp <hiredis/hiredis.h>"
  "actors/backends/rate_limiter_redis.cpp <hiredis/hiredis.h>"
  "actors/backends/result_backend_redis.cpp <hiredis/hiredis.h>"
)

rank_of() {
  local i
  for i in "${!layers[@]}"; do
    if [ "${layers[$i]}" = "$1" ]; then
      echo "$i"
      return
    fi
  done
  echo -1
}

allowed_for() {
  local r=$1 out="" i
  for ((i = 0; i <= r; ++i)); do
    out+="${layers[$i]}/ "
  done
  echo "${out% }"
}

failures=0
known=0
seen_exceptions=()

for layer in "${layers[@]}"; do
  [ -d "$layer" ] || continue
  rank=$(rank_of "$layer")
  while IFS= read -r file; do
    lineno=0
    while IFS= read -r line || [ -n "$line" ]; do
      lineno=$((lineno + 1))
      [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] || continue
      kind=${BASH_REMATCH[1]}
      path=${BASH_REMATCH[2]}
      top=${path%%/*}
      # vigil's own headers: quoted, or bracketed with a layer's name.
      if [ "$path" != "$top" ]; then
        target=$(rank_of "$top")
      else
        target=-1
      fi
      if [ "$kind" = '"' ] || [ "$target" -ge 0 ]; then
        if [ "$target" -lt 0 ]; then
          echo "$file:$lineno: #include \"$path\": not a vigil layer;" \
               "folder $layer/ may include only $(allowed_for "$rank")"
          failures=$((failures + 1))
        elif [ "$target" -gt "$rank" ]; then
          echo "$file:$lineno: #include \"$path\": $top/ is above $layer/;" \
               "folder $layer/ may include only $(allowed_for "$rank")"
          failures=$((failures + 1))
        fi
        continue
      fi
      # A system header: client libraries belong to adapters/.
      [ "$layer" = adapters ] && continue
      if [[ $path =~ ^($client_headers) ]]; then
        entry="$file <$path>"
        is_known=0
        for e in "${known_exceptions[@]}"; do
          if [ "$e" = "$entry" ]; then
            is_known=1
            break
          fi
        done
        if [ "$is_known" = 1 ]; then
          echo "$file:$lineno: #include <$path>: known exception (issue 14" \
               "part 2: the Redis reply type moves into adapters/)"
          known=$((known + 1))
          seen_exceptions+=("$entry")
        else
          echo "$file:$lineno: #include <$path>: C client headers belong" \
               "in adapters/ only; folder $layer/ may not include them"
          failures=$((failures + 1))
        fi
      fi
    done < "$file"
  done < <(find "$layer" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \
                                     -o -name '*.ipp' \) | sort)
done

# An exception that no longer occurs is removed from the list, so that the
# include cannot come back unnoticed.
for e in "${known_exceptions[@]}"; do
  found=0
  for s in "${seen_exceptions[@]+"${seen_exceptions[@]}"}"; do
    if [ "$s" = "$e" ]; then
      found=1
      break
    fi
  done
  if [ "$found" = 0 ]; then
    echo "scripts/check-layers.sh: the known exception '$e' no longer" \
         "occurs: remove it from known_exceptions"
    failures=$((failures + 1))
  fi
done

if [ "$failures" -gt 0 ]; then
  echo "check-layers: $failures violation(s), $known known exception(s)"
  exit 1
fi
echo "check-layers: ok ($known known exception(s), issue 14 part 2)"
