#!/usr/bin/env bash
# A SPICE session between QEMU's SPICE server and the scripted client
# spice_client.py, on 127.0.0.1 in a private network namespace; the client
# logs the TLS keys (Python ssl, SSLContext.keylog_filename).
#
# usage: record/tls/spice.sh MODE      (root: tcpdump, unshare)
#   tls     QEMU -spice tls-port=17200 (every channel TLS), throwaway CA made
#           here; client and server defaults (TLS 1.3)
#   tls12   the same with the client capped at TLS 1.2
#   tls13-resume  as tls, but display and inputs resume main's TLS 1.3
#           session (PSK from the ticket main received)
#   tls12-resume  as tls12, and display and inputs resume main's TLS 1.2
#           session (abbreviated handshake: no key exchange, server Finished
#           first)
#   tls12-frozen  as tls12, but after 4 s the client hangs (reads and answers
#           nothing, closes nothing) for 90 s: the server's connectivity timer
#           (45-75 s after the last byte it received) ends the session
#   plain   QEMU -spice port=17201, the same script without TLS (the twin)
# writes record/tls/spice-MODE.{pcap,keys,tshark.txt,client.txt} (plain: no
# .keys). NAME.client.txt is what the client itself sent and received per
# connection above TLS: byte counts and sha256, to check decryption against.
#
# The scripted session: QEMU (TCG, 128 MB, -vga qxl, no disk: the guest sits
# in SeaBIOS, which is display traffic enough) with disable-ticketing; the
# client links main, answers SET_ACK/PING, sends ATTACH_CHANNELS after
# MAIN_INIT, links display 0 (DISPLAY_INIT) and inputs 0, reads for 6 s, then
# closes display, inputs and main (close_notify first with TLS); QEMU is
# ended (SIGTERM) after the capture stops.
set -euo pipefail
mode=${1:?usage: spice.sh tls|tls12|tls13-resume|tls12-resume|tls12-frozen|plain}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tls-lib.sh"
case $mode in
tls | tls12 | tls13-resume | tls12-resume | tls12-frozen | plain) tls_init "spice-$mode" "$@" ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac

client_args=(--truth "$out/$name.client.txt")
if [ "$mode" = plain ]; then
    port=17201
    spice="port=$port,addr=127.0.0.1,disable-ticketing=on"
else
    port=17200
    tls_pki "$tmp/pki"
    spice="tls-port=$port,addr=127.0.0.1,disable-ticketing=on,x509-dir=$tmp/pki"
    client_args+=(--tls "$tmp/pki/ca-cert.pem" --keylog "$keys")
    case $mode in tls12 | tls12-resume | tls12-frozen) client_args+=(--tls-max 1.2) ;; esac
    case $mode in tls13-resume | tls12-resume) client_args+=(--resume) ;; esac
fi
tls_bg qemu-system-x86_64 -machine accel=tcg -m 128 -nodefaults -vga qxl -display none \
    -spice "$spice" >"$tmp/qemu.log" 2>&1
tls_wait_port $port
sleep 0.5
tls_capture "tcp port $port"
seconds=6
[ "$mode" = tls12-frozen ] && { seconds=4; client_args+=(--freeze 90); }
python3 "$here/spice_client.py" $port $seconds "${client_args[@]}" 2>"$tmp/client.log" || {
    cat "$tmp/client.log" >&2
    exit 1
}
tls_stop_capture
grep -v -E "S>C type (1|2|3)[0-9][0-9] " "$tmp/client.log" | head -60 >&2 || true
"$here/dump.sh" "$name" spice $port
ls -l "$out/$name".* >&2
