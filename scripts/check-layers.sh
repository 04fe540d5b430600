#!/usr/bin/env bash
# The layer check: every folder of vigil's sources includes only the folders
# below it, and only adapters/ includes the C client libraries' headers (and
# Boost.Beast/Asio) or names their types; adapters' own headers keep some of
# those headers to themselves. docs/ARCHITECTURE.md explains the layers.
# Prints each violation as "file:line: ...: rule" and exits 1 if there is
# any. tests/ is not checked: tests may reach any layer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Lowest first: a folder may include itself and the folders before it.
layers=(messages config tasks adapters actors web node bench cli)

# C client headers (and Beast/Asio): adapters/ only.
client_headers='hiredis/|amqp\.h|amqp_[a-z_]*\.h|rabbitmq-c/|libpq-fe\.h|sqlite3\.h|zlib\.h|isa-l/|isa-l\.h|boost/beast|boost/asio|curl/|cairo|pango/|expat\.h'

# C client identifiers: adapters/ only. Code above adapters/ reads the
# adapters' own types (redis_reply, amqp_properties, amqp_event, ...), never
# the C library's. Each alternative carries its own word boundaries.
# hiredis: its reply and context types and the REDIS_REPLY_* kinds.
client_identifiers='\b(redisReply|redisContext|REDIS_REPLY_)[A-Za-z0-9_]*'
# rabbitmq-c: its types (amqp_*_t), its constants (AMQP_*), its functions
# (amqp_*( called), its empty-value constants and its pool functions.
# vigil's own AMQP names start with amqp_ too (amqp_connection,
# amqp_properties, amqp_delivery, ...): none ends in _t, and above adapters/
# none is written directly before a parenthesis (construct them with
# braces), so the rule tells them apart.
client_identifiers+='|\bamqp_[a-z0-9_]+_t\b|\bAMQP_[A-Z0-9_]+'
client_identifiers+='|\bamqp_[a-z0-9_]+\(|\bamqp_empty_(bytes|table|array)\b'
client_identifiers+='|\b(init|empty|recycle)_amqp_pool\b'

# Client headers that adapters' public headers (*.hpp) may not include
# either, so that no includer sees them: the adapter forward-declares the
# C types it keeps as members.
private_headers='hiredis/|amqp\.h|amqp_[a-z_]*\.h|rabbitmq-c/|libpq-fe\.h|sqlite3\.h'

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
      if [ "$layer" = adapters ]; then
        if [[ $file == *.hpp && $path =~ ^($private_headers) ]]; then
          echo "$file:$lineno: #include <$path>: an adapter's header may not" \
               "pass this C header on to its includers; forward-declare" \
               "the types it needs"
          failures=$((failures + 1))
        fi
        continue
      fi
      if [[ $path =~ ^($client_headers) ]]; then
        echo "$file:$lineno: #include <$path>: C client headers belong" \
             "in adapters/ only; folder $layer/ may not include them"
        failures=$((failures + 1))
      fi
    done < "$file"
  done < <(find "$layer" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \
                                     -o -name '*.ipp' \) | sort)
done

# C client identifiers outside adapters/ (comments included: a comment that
# names them describes code that belongs in adapters/).
for layer in "${layers[@]}"; do
  [ "$layer" = adapters ] && continue
  [ -d "$layer" ] || continue
  while IFS=: read -r file lineno ident; do
    echo "$file:$lineno: ${ident%(}: C client types belong in adapters/ only;" \
         "use the adapter's own types"
    failures=$((failures + 1))
  done < <(grep -rnoE --include='*.cpp' --include='*.hpp' --include='*.h' \
             --include='*.ipp' "$client_identifiers" "$layer" \
             | sort || true)
done

if [ "$failures" -gt 0 ]; then
  echo "check-layers: $failures violation(s)"
  exit 1
fi
echo "check-layers: ok"
