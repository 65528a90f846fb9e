#!/usr/bin/env bash
# Records the holdout: second runs of lab scenarios, taken after the
# verdict rules were written, into corpora/holdout (see README.md there).
#   corpora/holdout/record.sh [FAMILY:CASE ...]     (default: the list below)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rec="$here/../lab/record"
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=(
    vnc:xvnc-wrong-password-retry vnc:xvnc-server-frozen vnc:xvnc-client-frozen
    vnc:xvnc-two-clients-one-dies vnc:xvnc-haproxy-idle
    spice:user-close spice:server-killed spice:client-frozen-short spice:haproxy-idle
    spicy:wrong-ticket-twice spicy:server-frozen spicy:blackhole-short
    novnc:relay-killed novnc:client-frozen novnc:server-frozen novnc:haproxy-idle-reconnect
    spicehtml5:relay-killed novnc:blackhole
  )
fi
for c in "${cases[@]}"; do
  family=${c%%:*}
  echo "== $family $c" >&2
  LAB_OUT="$here" timeout 600 "$rec/$family.sh" "${c#*:}" || echo "failed: $c" >&2
done
