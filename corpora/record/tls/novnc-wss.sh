#!/usr/bin/env bash
# noVNC 1.3.0 (vnc.html) in headless Chromium -> websockify -> TigerVNC Xvnc,
# on 127.0.0.1 in a private network namespace; only the browser<->websockify
# leg is captured (port 17080). Chromium writes the TLS keys (SSLKEYLOGFILE).
#
# usage: record/tls/novnc-wss.sh MODE     (root: tcpdump, unshare)
#   tls13          wss://, Chromium and websockify defaults (TLS 1.3)
#   tls12          wss://, Chromium run with --ssl-version-max=tls1.2
#   tls12-chacha   wss://, TLS 1.2 and websockify --ssl-ciphers
#                  ECDHE-RSA-CHACHA20-POLY1305 (Chromium capped as in tls12)
#   plain          ws://, no certificate (the plaintext twin)
# writes record/tls/novnc-wss-MODE.{pcap,keys,tshark.txt} (novnc-ws-plain.* for
# plain; it has no .keys); tls13 also writes novnc-wss-tls13.dsb.pcapng
# (editcap --inject-secrets tls,KEYS: the keys in a Decryption Secrets Block).
#
# The scripted session, identical in every mode: Xvnc 320x240 with a fixed
# blocky pattern (xdraw.py, seed 1); Chromium loads vnc.html (static files over plain HTTP on 17081, not
# captured) with autoconnect; once noVNC says "connected" the
# 160x120 centre is redrawn three times, 1 s apart (seeds 2, 3, 4); then noVNC's own Disconnect button is clicked
# through DevTools (17090), so noVNC sends a WebSocket close 1000 and
# websockify answers; the browser is ended 1.5 s later.
set -euo pipefail
mode=${1:?usage: novnc-wss.sh tls13|tls12|tls12-chacha|plain}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tls-lib.sh"
case $mode in
tls13 | tls12 | tls12-chacha) tls_init "novnc-wss-$mode" "$@" ;;
plain) tls_init novnc-ws-plain "$@" ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac

rfb=17001 ws=17080 http=17081 devtools=17090
tls_xvnc $rfb 320x240 -SecurityTypes None
export DISPLAY=$display
python3 "$here/xdraw.py" "$display" 1

tls_bg python3 -m http.server $http --bind 127.0.0.1 --directory /usr/share/novnc >"$tmp/http.log" 2>&1
ws_opts=()
chrome_opts=()
encrypt=0
case $mode in
tls*)
    tls_pki "$tmp/pki"
    ws_opts=(--ssl-only --cert="$tmp/pki/server-cert.pem" --key="$tmp/pki/server-key.pem")
    chrome_opts=(--ignore-certificate-errors)
    encrypt=1
    ;;
esac
case $mode in
tls12) chrome_opts+=(--ssl-version-max=tls1.2) ;;
tls12-chacha)
    chrome_opts+=(--ssl-version-max=tls1.2)
    ws_opts+=(--ssl-version=tlsv1_2 --ssl-ciphers=ECDHE-RSA-CHACHA20-POLY1305)
    ;;
esac
tls_bg websockify "${ws_opts[@]}" 127.0.0.1:$ws 127.0.0.1:$rfb >"$tmp/websockify.log" 2>&1
tls_wait_port $ws
tls_wait_port $http

tls_capture "tcp port $ws"
keylog="$tmp/chrome.keys"
: >"$keylog"
SSLKEYLOGFILE=$keylog tls_bg chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    "${chrome_opts[@]}" --remote-debugging-port=$devtools --user-data-dir="$tmp/chrome" \
    "http://127.0.0.1:$http/vnc.html?autoconnect=1&host=127.0.0.1&port=$ws&path=websockify&encrypt=$encrypt&resize=off" \
    >"$tmp/chrome.log" 2>&1
ok=""
for _ in $(seq 1 80); do
    s=$(python3 "$here/cdp.py" $devtools state 2>/dev/null || true)
    case $s in *noVNC_connected*) ok=1; echo "noVNC: $s" >&2; break ;; esac
    sleep 0.25
done
[ -n "$ok" ] || { echo "noVNC did not connect: ${s:-}" >&2; cat "$tmp/websockify.log" >&2; exit 1; }
for seed in 2 3 4; do
    sleep 1
    python3 "$here/xdraw.py" "$display" $seed 80 60 160 120
done
sleep 1
python3 "$here/cdp.py" $devtools disconnect >&2
sleep 1.5
tls_stop_capture
if [ "$mode" != plain ]; then
    # Only the key lines (Chromium writes nothing else, but be sure).
    grep -E '^(CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|CLIENT_TRAFFIC_SECRET_[0-9]+|SERVER_TRAFFIC_SECRET_[0-9]+|EXPORTER_SECRET|EARLY_EXPORTER_SECRET|CLIENT_EARLY_TRAFFIC_SECRET) ' \
        "$keylog" >"$keys" || { echo "Chromium wrote no keys" >&2; exit 1; }
fi
"$here/dump.sh" "$name" ws $ws
if [ "$mode" = tls13 ]; then
    # The same capture with the key log inside (pcapng Decryption Secrets Block).
    editcap --inject-secrets "tls,$keys" "$cap" "$out/$name.dsb.pcapng"
fi
ls -l "$out/$name".* >&2
