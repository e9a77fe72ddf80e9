#!/usr/bin/env bash
# `make run`: starts the server, runs the quickstart against it once it answers, then keeps
# serving until interrupted (Ctrl-C or SIGTERM stop the server cleanly).
#   scripts/run.sh HEARTH_BINARY LISTEN DATA_DIR
# QUICKSTART=0 skips the quickstart.
set -uo pipefail
binary=$1 listen=$2 data_dir=$3
root=$(cd "$(dirname "$0")/.." && pwd)

"$binary" server --listen "$listen" --data-dir "$data_dir" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; exit' INT TERM

# The server prints "serving on" once it accepts requests; wait for its port (10 s at most).
url="http://$listen"
for _ in $(seq 100); do
  if curl -s -o /dev/null "$url/"; then break; fi
  if ! kill -0 $server 2>/dev/null; then wait $server; exit $?; fi
  sleep 0.1
done

if [ "${QUICKSTART:-1}" != 0 ]; then
  echo "--- quickstart (examples/quickstart.py) against $url ---"
  if HEARTH_ENDPOINT_URL=$url /usr/bin/python3 "$root/examples/quickstart.py"; then
    echo "--- the server keeps serving on $url (data in $data_dir); Ctrl-C stops it ---"
  else
    echo "--- the quickstart failed (above); the server keeps serving on $url ---" >&2
  fi
fi
wait $server
