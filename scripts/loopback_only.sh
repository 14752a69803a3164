#!/usr/bin/env bash
# Run a command in a network namespace of its own with only the loopback interface up, so that
# nothing it starts can send traffic beyond 127.0.0.0/8 (`make test`: every Ray, MLflow and
# PostgreSQL server the tests start, and every connection they make). Ray, which would advertise and
# listen on the machine's own address, finds none and uses 127.0.0.1.
# Needs root (CI) or unprivileged user namespaces (`unshare -rn`); where neither works it says so
# and runs the command as it is (the tests still bind 127.0.0.1, but Ray's nodes may advertise the
# machine's address).
set -euo pipefail
if [ "${GATESEARCH_NETNS:-}" = 1 ]; then exec "$@"; fi  # already inside
export GATESEARCH_NETNS=1
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
  exec unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
elif unshare --user --map-current-user --net true 2>/dev/null; then
  exec unshare --user --map-current-user --net -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "loopback_only.sh: no network namespace available here (not root, no user namespaces): running as is" >&2
exec "$@"
