#!/usr/bin/env bash
# Records a short SPICE session between QEMU's SPICE server and spicy (spice-gtk)
# on 127.0.0.1, with a tshark text dump next to the capture for the tests.
#
# usage: spice-record.sh plain|password|killed|tls [outdir]
#   plain     disable-ticketing, client disconnects after a few seconds (clean end)
#   tls       every channel on the TLS port (throwaway CA made here); tether
#             sees TLS from the first byte and keeps timing only
#   password  server asks for a ticket (password "tether"), client sends it
#   killed    qemu is SIGKILLed mid-session (the client sees the sockets die)
# Uses only ports 36000-36099 and X display :71-:73 (one per mode).
set -euo pipefail
mode=${1:?plain|password|killed|tls}
out=${2:-$(cd "$(dirname "$0")/../recorded" && pwd)}
case $mode in
  plain) port=36010; disp=:71 ;;
  password) port=36020; disp=:72 ;;
  killed) port=36030; disp=:73 ;;
  tls) port=36040; disp=:74 ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
cap="$out/spice-$mode.pcap"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

Xvfb "$disp" -screen 0 800x600x24 -nolisten tcp >/dev/null 2>&1 & pids+=($!)
tcpdump -i lo -s 0 -U -w "$cap" "tcp port $port" >/dev/null 2>&1 & td=$!; pids+=($td)
sleep 1

client_tls=()
if [ "$mode" = tls ]; then
  pki=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tether-ca \
    -keyout "$pki/ca-key.pem" -out "$pki/ca-cert.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -keyout "$pki/server-key.pem" -out "$pki/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$pki/ext"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca-cert.pem" -CAkey "$pki/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$pki/ext" -out "$pki/server-cert.pem" 2>/dev/null
fi
if [ "$mode" = tls ]; then
  spice_opt="tls-port=$port,addr=127.0.0.1,disable-ticketing=on,x509-dir=$pki,tls-channel=default"
  secret=()
  client_pw=()
  client_tls=(-s "$port" --spice-ca-file="$pki/ca-cert.pem")
elif [ "$mode" = password ]; then
  spice_opt="port=$port,addr=127.0.0.1,password-secret=spicepw"
  secret=(-object secret,id=spicepw,data=tether)
  client_pw=(--password=tether)
else
  spice_opt="port=$port,addr=127.0.0.1,disable-ticketing=on"
  secret=()
  client_pw=()
fi
# No disk, TCG: the guest sits in SeaBIOS, which is enough display traffic.
qemu-system-x86_64 -machine accel=tcg -m 128 -nodefaults -vga qxl -display none \
  "${secret[@]}" -spice "$spice_opt" & qemu=$!; pids+=($qemu)
sleep 1.5
if [ "$mode" = tls ]; then
  DISPLAY=$disp spicy -h 127.0.0.1 "${client_tls[@]}" >/dev/null 2>&1 & client=$!; pids+=($client)
else
  DISPLAY=$disp spicy -h 127.0.0.1 -p "$port" "${client_pw[@]}" >/dev/null 2>&1 & client=$!; pids+=($client)
fi
sleep 4
if [ "$mode" = killed ]; then
  kill -KILL "$qemu"; sleep 1
  kill "$client" 2>/dev/null || true
else
  kill "$client"; sleep 1
  kill "$qemu"
fi
sleep 1
kill "$td"; wait "$td" 2>/dev/null || true
# Per message: stream, direction, channel type (link only), message type; one line per packet.
tshark -r "$cap" -o tcp.desegment_tcp_streams:TRUE -d "tcp.port==$port,spice" \
  -T fields -e frame.number -e tcp.stream -e tcp.srcport -e spice.channel_type \
  -e spice.message_type -e spice.ping_id -E occurrence=a -E separator=/t \
  > "$cap.tshark.txt"
if [ "$mode" = tls ]; then
  # TLS: per-connection frame and byte counts, and who closed, as tshark sees them.
  tshark -r "$cap" -q -z conv,tcp > "$cap.tshark.txt"
  rm -rf "$pki"
fi
ls -l "$cap" "$cap.tshark.txt"
