#!/usr/bin/env bash
# An RFB session between TigerVNC's Xvnc and the scripted client rfb_client.py,
# on 127.0.0.1 in a private network namespace; with VeNCrypt the client logs
# the TLS keys (Python ssl, SSLContext.keylog_filename).
#
# usage: record/tls/vencrypt.sh MODE     (root: tcpdump, unshare)
#   tls      Xvnc -SecurityTypes X509None -X509Cert/-X509Key (throwaway CA made
#            here), RFB port 17301; client and server defaults (TLS 1.3)
#   tls12    the same with the client capped at TLS 1.2
#   tls13-hrr-keyupdate  as tls, but Xvnc -GnuTLSPriority allows only the
#            secp256r1 group, so the client's x25519 key share draws a
#            HelloRetryRequest; and halfway through the client sends a
#            KeyUpdate (update_requested), which GnuTLS answers with its own
#   plain    Xvnc -SecurityTypes None, RFB port 17302 (the plaintext twin)
# writes record/tls/vencrypt-MODE.{pcap,keys,tshark.txt,client.txt}; plain
# writes vnc-plain.{pcap,tshark.txt,client.txt}. NAME.client.txt is what the
# client itself sent and received from SecurityResult on (inside TLS with
# VeNCrypt): byte counts and sha256, to check decryption against.
#
# The scripted session: Xvnc 320x240 with the fixed xdraw.py pattern (seed 1);
# the client does the RFB 3.8 handshake (VeNCrypt 0.2, X509None, TLS; or
# None), ServerInit, SetPixelFormat, SetEncodings [ZRLE, Raw, DesktopSize], a
# full update request, then incremental requests with pointer and key input
# every 0.3 s for 5 s while the 160x120 centre is redrawn at 1, 2 and 3 s
# (seeds 2, 3, 4); then close_notify (TLS) and close.
set -euo pipefail
mode=${1:?usage: vencrypt.sh tls|tls12|tls13-hrr-keyupdate|plain}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tls-lib.sh"
case $mode in
tls | tls12 | tls13-hrr-keyupdate) tls_init "vencrypt-$mode" "$@" ;;
plain) tls_init vnc-plain "$@" ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac

client_args=(--truth "$out/$name.client.txt")
prio=()
if [ "$mode" = tls13-hrr-keyupdate ]; then
    prio=(-GnuTLSPriority "NORMAL:-GROUP-ALL:+GROUP-SECP256R1")
    client_args+=(--key-update)
fi
if [ "$mode" = plain ]; then
    port=17302
    tls_xvnc $port 320x240 -SecurityTypes None
else
    port=17301
    tls_pki "$tmp/pki"
    tls_xvnc $port 320x240 -SecurityTypes X509None "${prio[@]}" \
        -X509Cert "$tmp/pki/server-cert.pem" -X509Key "$tmp/pki/server-key.pem"
    client_args+=(--vencrypt "$tmp/pki/ca-cert.pem" --keylog "$keys")
    [ "$mode" = tls12 ] && client_args+=(--tls-max 1.2)
fi
python3 "$here/xdraw.py" "$display" 1
tls_capture "tcp port $port"
python3 "$here/rfb_client.py" $port 5 "${client_args[@]}" 2>"$tmp/client.log" &
client=$!
tls_pids+=($client)
for seed in 2 3 4; do
    sleep 1
    python3 "$here/xdraw.py" "$display" $seed 80 60 160 120
done
wait $client || { cat "$tmp/client.log" >&2; exit 1; }
tls_stop_capture
cat "$tmp/client.log" >&2
"$here/dump.sh" "$name" rfb $port
ls -l "$out/$name".* >&2
