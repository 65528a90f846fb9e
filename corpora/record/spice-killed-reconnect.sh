#!/usr/bin/env bash
# Records a SPICE session between QEMU's SPICE server and spicy (spice-gtk)
# on 127.0.0.1 in which QEMU is SIGKILLed mid-session, followed by a
# reconnect attempt that finds nothing listening (SYN answered by RST):
#   corpora/recorded/spice-killed-reconnect.pcap
#   corpora/recorded/spice-killed-reconnect.pcap.tshark.txt
#
# Unlike spice-record.sh's `killed` mode, the VM also has a sound card
# (playback and record channels, SPICE audiodev) and a USB redirection
# slot (usbredir channel), so the channel set is closer to a desktop
# client's (main, display, inputs, cursor, playback, record, usbredir).
# Timeline: spicy connects at ~T+0, the session runs ~4 s, QEMU gets
# SIGKILL (the kernel closes every channel's socket: FIN, or RST where
# unread bytes were pending). spice-gtk does not reconnect by itself after
# losing the server; the scripted "user" starts spicy again 2 s after the
# kill, which is refused (RST to its SYN) and gives up.
#
# Ports and display (rec's range): SPICE 6120, X display :612.
# Usage: corpora/record/spice-killed-reconnect.sh   (root, for tcpdump)
#        corpora/record/spice-killed-reconnect.sh --dump   (only rewrite the
#        tshark dump of the committed capture)
set -euo pipefail
port=6120
disp=:612
out=$(cd "$(dirname "$0")/../recorded" && pwd)
cap="$out/spice-killed-reconnect.pcap"

# Per message: stream, direction, channel type (link only), message type,
# as spice-record.sh writes it; then the SYN, FIN and RST segments.
dump() {
    {
        echo "# Oracle decode of $(basename "$cap") by a peer decoder"
        echo "# tool: $(tshark --version | head -1)"
        echo "# sha256: $(sha256sum "$cap" | cut -d' ' -f1)"
        echo
        echo "## SPICE messages"
        echo "# columns: frame stream sport channel_type message_type ping_id"
        tshark -r "$cap" -o tcp.desegment_tcp_streams:TRUE -d "tcp.port==$port,spice" \
            -T fields -e frame.number -e tcp.stream -e tcp.srcport -e spice.channel_type \
            -e spice.message_type -e spice.ping_id -E occurrence=a -E separator=/t 2>/dev/null |
            awk -F'\t' '$4 != "" || $5 != ""'
        echo
        echo "## TCP segments"
        echo "# (SYN, FIN and RST only)"
        echo "# columns: frame epoch trel stream src sport dst dport flags payload_len"
        tshark -r "$cap" -T fields -e frame.number -e frame.time_epoch -e frame.time_relative \
            -e tcp.stream -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.flags.str \
            -e tcp.len -Y 'tcp.flags.syn==1 || tcp.flags.fin==1 || tcp.flags.reset==1' 2>/dev/null
    } >"$cap.tshark.txt"
    ls -l "$cap" "$cap.tshark.txt"
}
if [ "${1:-}" = --dump ]; then
    dump
    exit 0
fi
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
stamp() { echo "[$(date -u +%H:%M:%S.%N | cut -c1-12)] $*"; }

Xvfb "$disp" -screen 0 800x600x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
tcpdump -i lo -s 0 -U --immediate-mode -w "$cap" "tcp port $port" >/dev/null 2>&1 &
td=$!
pids+=($td)
sleep 1

# No disk, TCG: the guest sits in SeaBIOS, which is enough display traffic.
qemu-system-x86_64 -machine accel=tcg -m 128 -nodefaults -vga qxl -display none \
    -audiodev spice,id=snd0 -device intel-hda -device hda-duplex,audiodev=snd0 \
    -device qemu-xhci -chardev spicevmc,name=usbredir,id=usbredir1 \
    -device usb-redir,chardev=usbredir1 \
    -spice "port=$port,addr=127.0.0.1,disable-ticketing=on" &
qemu=$!
pids+=($qemu)
sleep 1.5
stamp "spicy connects"
DISPLAY=$disp spicy -h 127.0.0.1 -p "$port" >/dev/null 2>&1 &
client=$!
pids+=($client)
sleep 4
stamp "SIGKILL qemu $qemu"
kill -KILL "$qemu"
sleep 2
stamp "spicy started again"
DISPLAY=$disp spicy -h 127.0.0.1 -p "$port" >/dev/null 2>&1 &
again=$!
pids+=($again)
sleep 2
kill "$client" "$again" 2>/dev/null || true
# Let tcpdump write the last packets before it stops.
sleep 1.5
kill "$td"
wait "$td" 2>/dev/null || true

dump
