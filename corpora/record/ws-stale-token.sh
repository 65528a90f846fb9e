#!/usr/bin/env bash
# Records a WebSocket reconnect with a stale token, and the same session
# done right, between the real test peers in ws-token-peers.py (a token
# server and a scripted client, Python stdlib only), on 127.0.0.1:
#   corpora/recorded/ws-stale-token-401.pcap
#       token fetch, upgrade (101), ~3.75 s of echoes and server pings/pongs,
#       the server drops the connection with no close frame (FIN, a
#       "restart"), the client reconnects 1 s later REUSING the old token,
#       now past its expiry, and gets `401 Unauthorized` "token expired".
#   corpora/recorded/ws-fresh-token-reconnect.pcap
#       the same first generation; the client fetches a fresh token before
#       reconnecting, gets 101, exchanges two messages and a ping/pong, and
#       closes with 1000 "bye"; the server echoes the close and closes TCP.
# and a tshark dump next to each (<capture>.tshark.txt) for the tests.
#
# Tokens are `<exp>.<sig>` in the upgrade URL (`/ws?token=...`): exp is the
# expiry in unix seconds (ceil(issue time + 3 s)), sig the first 16 hex
# digits of HMAC-SHA256("tether-test-secret", exp). See ws-token-peers.py.
#
# Ports (rec's range): 6150 stale, 6151 fresh.
#
# Usage: corpora/record/ws-stale-token.sh   (needs root for tcpdump on lo)
#        corpora/record/ws-stale-token.sh --dump   (only rewrite the tshark
#        dumps of the committed captures)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/recorded"
peers="$here/record/ws-token-peers.py"
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

record() { # name port mode
    local name=$1 port=$2 mode=$3
    local f="$out/$name.pcap"
    python3 "$peers" server "$port" 3.75 >"$tmp/$name-server.log" 2>&1 &
    local server=$!
    pids+=($server)
    sleep 0.5
    tcpdump -i lo -s 0 -U --immediate-mode -w "$f" "tcp port $port" >"$tmp/$name-tcpdump.log" 2>&1 &
    local td=$!
    pids+=($td)
    sleep 1
    python3 "$peers" client "$port" "$mode" | tee "$tmp/$name-client.log"
    # Let tcpdump write the last packets before it stops.
    sleep 1.5
    kill "$td"
    wait "$td" 2>/dev/null || true
    kill "$server"
    dump "$f"
}

dump() {
    local f=$1
    local conv=(-T fields -e frame.number -e frame.time_epoch -e frame.time_relative
        -e tcp.stream -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.flags.str
        -e tcp.len)
    local http=(-T fields -e frame.number -e frame.time_epoch -e tcp.stream
        -e tcp.srcport -e tcp.dstport -e http.request.uri -e http.response.code
        -e http.upgrade -e http.file_data)
    local ws=(-T fields -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport
        -e tcp.dstport -e websocket.fin -e websocket.opcode -e websocket.mask
        -e websocket.payload_length -e websocket.payload.close.status_code
        -e websocket.payload.close.reason -E occurrence=a -E aggregator=,)
    {
        echo "# Oracle decode of $(basename "$f") by a peer decoder"
        echo "# tool: $(tshark --version | head -1)"
        echo "# sha256: $(sha256sum "$f" | cut -d' ' -f1)"
        echo
        echo "## TCP segments"
        echo "# columns: frame epoch trel stream src sport dst dport flags payload_len"
        tshark -r "$f" "${conv[@]}" 2>/dev/null
        echo
        echo "## HTTP requests and responses"
        echo "# columns: frame epoch stream sport dport uri response_code upgrade body"
        tshark -r "$f" -Y 'http.request || http.response' "${http[@]}" 2>/dev/null
        echo
        echo "## WebSocket frames"
        echo "# columns: frame epoch stream sport dport fin opcode mask payload_len close_code close_reason"
        tshark -r "$f" -Y websocket "${ws[@]}" 2>/dev/null
    } >"$f.tshark.txt"
    ls -l "$f" "$f.tshark.txt"
}

if [ "${1:-}" = --dump ]; then
    dump "$out/ws-stale-token-401.pcap"
    dump "$out/ws-fresh-token-reconnect.pcap"
    exit 0
fi
record ws-stale-token-401 6150 stale
record ws-fresh-token-reconnect 6151 fresh
