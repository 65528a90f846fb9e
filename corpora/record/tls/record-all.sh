#!/usr/bin/env bash
# Re-records every capture in corpora/record/tls/ (about 2 minutes; root for
# tcpdump and unshare). Each script can also be run alone; see README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for m in tls13 tls12 tls12-chacha plain; do "$here/novnc-wss.sh" $m; done
for m in tls tls12 tls13-resume tls12-resume tls12-frozen plain; do "$here/spice.sh" $m; done
for m in tls tls12 tls13-hrr-keyupdate plain; do "$here/vencrypt.sh" $m; done
"$here/verify.py"
