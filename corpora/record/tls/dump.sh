#!/usr/bin/env bash
# Writes NAME.tshark.txt next to NAME.pcap: what tshark decodes (and, with
# NAME.keys present, decrypts with -o tls.keylog_file:NAME.keys), with frame
# numbers of NAME.pcap, for tests that compare message for message without
# running tshark.
#
# usage: record/tls/dump.sh NAME ws|spice|rfb PORT
#   ws     WebSocket carrying RFB (noVNC <-> websockify), TLS from the first byte or plain
#   spice  SPICE (one TCP connection per channel), TLS from the first byte or plain
#   rfb    RFB; with keys, VeNCrypt (TLS starts inside the RFB handshake)
#
# Sections (each names its tshark arguments and columns):
#   TCP conversations
#   TLS handshake   ClientHello / ServerHello fields (version, cipher, ALPN, SNI)
#   TLS records     one row per packet: record types and lengths, decrypted
#                   inner content type (TLS 1.3), handshake types, alerts
#   Streams         per TCP stream and direction, the bytes tshark follows
#                   (follow,tls = decrypted application data; follow,tcp =
#                   TCP payload): count + sha256
#   application     per packet, the messages tshark's dissector finds
#
# Where tshark 4.0 cannot go on its own, this script helps it, and the section
# says how: SPICE after TLS and RFB after VeNCrypt are dissected from a
# synthetic plaintext capture (tls2plain.py) of the bytes tshark decrypted;
# for VeNCrypt the TLS sections read a copy of the capture cut at the
# ClientHello (tshark's VNC-to-TLS hand-off loses records that span TCP
# segments, so decryption stops after the first one; cut, it decrypts all).
set -euo pipefail
name=${1:?NAME} kind=${2:?ws|spice|rfb} port=${3:?PORT}
dir=$(cd "$(dirname "$0")" && pwd)
cap="$dir/$name.pcap"
keys="$dir/$name.keys"
txt="$dir/$name.tshark.txt"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
opts=(-o tcp.desegment_tcp_streams:TRUE -o tls.desegment_ssl_records:TRUE
    -o tls.desegment_ssl_application_data:TRUE)
tlsflow=0
[ -s "$keys" ] && tlsflow=1 && opts+=(-o "tls.keylog_file:$keys")
# Decode-as for the whole capture ($cap) and for the TLS view ($tcap, whose
# frame N is frame N+$toff of $cap).
tcap=$cap toff=0
case $kind/$tlsflow in
ws/1) decode=(-d "tcp.port==$port,tls" -d "tls.port==$port,http") ;;
ws/0) decode=(-d "tcp.port==$port,http") ;;
spice/1) decode=(-d "tcp.port==$port,tls" -d "tls.port==$port,data") ;;
spice/0) decode=(-d "tcp.port==$port,spice") ;;
rfb/*) decode=(-d "tcp.port==$port,vnc") ;;
esac
tdecode=("${decode[@]}")
T=(-T fields -E occurrence=a -E aggregator=, -E separator=/t)
F=(-e frame.number -e frame.time_relative -e tcp.stream -e tcp.srcport -e tcp.dstport)
t0=$(tshark -r "$cap" -c 1 -T fields -e frame.time_epoch 2>/dev/null)
q() { tshark -r "$cap" "${opts[@]}" "${decode[@]}" "$@" 2>/dev/null; }
# TLS view query, rows mapped back: frame + $toff, time relative to $cap.
tq() {
    tshark -r "$tcap" "${opts[@]}" "${tdecode[@]}" "$@" -T fields -E occurrence=a -E aggregator=, \
        -E separator=/t -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport \
        "${tf[@]}" 2>/dev/null |
        awk -F'\t' -v OFS='\t' -v off="$toff" -v t0="$t0" '{ $1 += off; $2 = sprintf("%.6f", $2 - t0); print }'
}
if [ "$kind" = rfb ] && [ $tlsflow = 1 ]; then
    first=$(q -Y 'tls.handshake.type==1' -T fields -e frame.number | head -1)
    tshark -r "$cap" -Y "frame.number >= $first" -w "$w/tls.pcap" 2>/dev/null
    tcap="$w/tls.pcap" toff=$((first - 1))
    tdecode=(-d "tcp.port==$port,tls" -d "tls.port==$port,data")
fi

{
echo "# tshark decode of $name.pcap"
echo "# tool: $(tshark --version 2>/dev/null | head -1)"
echo "# sha256 $name.pcap: $(sha256sum "$cap" | cut -d' ' -f1)"
[ $tlsflow = 1 ] && echo "# sha256 $name.keys: $(sha256sum "$keys" | cut -d' ' -f1)"
echo "# tshark args: -r $name.pcap ${opts[*]//$dir\//} ${decode[*]}"
[ "$toff" != 0 ] && echo "# TLS sections: the same args on $name.pcap cut at its ClientHello (frames >= $((toff + 1)); numbers below are of $name.pcap) with ${tdecode[*]}"
echo "# columns are tab-separated; trel = seconds since the first frame; several values of one field in a packet are comma-joined"
echo

echo "## TCP conversations (-q -z conv,tcp)"
q -q -z conv,tcp | sed -n '/^====/,$p'
echo

if [ $tlsflow = 1 ]; then
echo "## TLS handshake: ClientHello (-Y tls.handshake.type==1)"
echo "# columns: frame trel stream sport dport record_version supported_versions sni alpn"
tf=(-e tls.record.version -e tls.handshake.extensions.supported_version
    -e tls.handshake.extensions_server_name -e tls.handshake.extensions_alpn_str)
tq -Y 'tls.handshake.type==1'
echo "## TLS handshake: ServerHello (-Y tls.handshake.type==2)"
echo "# columns: frame trel stream sport dport legacy_version selected_version ciphersuite alpn extension_types"
tf=(-e tls.handshake.version -e tls.handshake.extensions.supported_version -e tls.handshake.ciphersuite
    -e tls.handshake.extensions_alpn_str -e tls.handshake.extension.type)
tq -Y 'tls.handshake.type==2'
echo "## TLS handshake: ServerHello version and cipher suite as tshark names them (count, line)"
tshark -r "$tcap" "${opts[@]}" "${tdecode[@]}" -Y 'tls.handshake.type==2' -V 2>/dev/null |
    grep -E '^\s+(Cipher Suite|Supported Version):' | sed 's/^ *//' | sort | uniq -c || true
echo

echo "## TLS records (-Y tls)"
echo "# columns: frame trel stream sport dport opaque_type content_type record_length handshake_types alert_level alert_desc app_data_proto"
echo "# (TLS 1.3: opaque_type is the outer type 23 and content_type the decrypted inner one; no content_type = not decrypted)"
tf=(-e tls.record.opaque_type -e tls.record.content_type -e tls.record.length -e tls.handshake.type
    -e tls.alert_message.level -e tls.alert_message.desc -e tls.app_data_proto)
tq -Y tls
echo
fi

echo "## Streams: bytes followed per TCP stream and direction"
echo "# columns: stream follow_kind client_to_server_bytes c2s_sha256 server_to_client_bytes s2c_sha256"
follow() { # capture kind stream
    local d=("${decode[@]}")
    [ "$1" = "$tcap" ] && d=("${tdecode[@]}")
    tshark -r "$1" "${opts[@]}" "${d[@]}" -q -z "follow,$2,raw,$3" 2>/dev/null | python3 -c '
import sys, hashlib
stream, kind, port = sys.argv[1:4]
nodes, data, on = {}, {0: bytearray(), 1: bytearray()}, False
for l in sys.stdin.read().split("\n"):
    if l.startswith("Node 0:") or l.startswith("Node 1:"):
        nodes[int(l[5])] = l.split(":")[-1].strip()
        on = l.startswith("Node 1:")
        continue
    if l.startswith("===="):
        on = False
        continue
    if not on or not l.strip():
        continue
    # follow raw: node 0 data at column 0, node 1 data indented by a tab
    data[1 if l.startswith("\t") else 0].extend(bytes.fromhex(l.strip()))
# tshark 4.0 prints "Node 1: :0" for follow,tls; node 0 is the first sender seen
server = 0 if nodes.get(0) == port else 1
c2s, s2c = data[1 - server], data[server]
print(stream, kind, len(c2s), hashlib.sha256(c2s).hexdigest(), len(s2c), hashlib.sha256(s2c).hexdigest(), sep="\t")
' "$3" "$2" "$port"
}
nstreams=$(q -T fields -e tcp.stream | sort -un | tail -1)
for s in $(seq 0 "${nstreams:-0}"); do
    follow "$cap" tcp "$s"
    [ $tlsflow = 1 ] && follow "$tcap" tls "$s"
done
echo

case $kind in
ws)
    echo "## WebSocket handshake (-Y http)"
    echo "# columns: frame trel stream sport dport request_uri response_code upgrade sec_ws_key sec_ws_accept sec_ws_protocol sec_ws_version"
    q -Y http "${T[@]}" "${F[@]}" -e http.request.uri -e http.response.code -e http.upgrade \
        -e http.sec_websocket_key -e http.sec_websocket_accept -e http.sec_websocket_protocol \
        -e http.sec_websocket_version
    echo
    echo "## WebSocket frames (-Y websocket)"
    echo "# tshark 4.0 does not dissect RFB inside WebSocket, so payload_head is the first 8 bytes of each unmasked payload (data.data, cut to 16 hex digits)"
    echo "# columns: frame trel stream sport dport fin opcode mask payload_len len16 len64 close_code close_reason payload_head"
    q -Y websocket "${T[@]}" "${F[@]}" -e websocket.fin -e websocket.opcode -e websocket.mask \
        -e websocket.payload_length -e websocket.payload_length_ext_16 -e websocket.payload_length_ext_64 \
        -e websocket.payload.close.status_code -e websocket.payload.close.reason -e data.data |
        awk -F'\t' 'BEGIN{OFS="\t"} { n=split($NF, a, ","); s=""; for (i=1;i<=n;i++) s = s (i>1?",":"") substr(a[i],1,16); $NF=s; print }'
    ;;
spice)
    sf=(-Y spice "${T[@]}" -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport
        -e spice.channel_type -e spice.message_type -e spice.ping_id -e spice.error_code -e _ws.col.Info)
    if [ $tlsflow = 1 ]; then
        echo "## SPICE messages (tshark's SPICE dissector on what tshark decrypted)"
        echo "# tshark 4.0 cannot hand decrypted TLS to its SPICE dissector (no tls.port"
        echo "# entry for it), so tls2plain.py puts the plaintext tshark decrypts (-d tls.port==$port,data: data.data)"
        echo "# into one synthetic TCP segment per original frame, and tshark -d tcp.port==$port,spice reads"
        echo "# that; frame numbers are mapped back to $name.pcap"
        python3 "$dir/tls2plain.py" "$cap" "$keys" "$port" "$w/plain.pcap" "$w/map"
        rows=$(tshark -r "$w/plain.pcap" -o tcp.desegment_tcp_streams:TRUE -d "tcp.port==$port,spice" "${sf[@]}" 2>/dev/null)
    else
        echo "## SPICE messages (-Y spice)"
        : >"$w/map"
        rows=$(q "${sf[@]}")
    fi
    echo "# columns: frame trel stream sport dport channel_type message_type(s) ping_id link_error_code info"
    printf '%s\n' "$rows" | awk -F'\t' -v OFS='\t' -v t0="$t0" -v map="$w/map" '
        BEGIN { while ((getline l < map) > 0) { split(l, a, " "); m[a[1]] = a[2] } }
        { if ($1 in m) $1 = m[$1]; $2 = sprintf("%.6f", $2 - t0); print }'
    ;;
rfb)
    vf=("${T[@]}" -e frame.number -e frame.time_epoch -e tcp.stream -e tcp.srcport -e tcp.dstport
        -e vnc.server_proto_ver -e vnc.client_proto_ver
        -e vnc.num_security_types -e vnc.security_type -e vnc.client_security_type
        -e vnc.vencrypt_server_major_ver -e vnc.vencrypt_server_minor_ver -e vnc.vencrypt_client_major_ver
        -e vnc.vencrypt_client_minor_ver -e vnc.vencrypt_version_ack -e vnc.vencrypt_num_auth_types
        -e vnc.vencrypt_auth_type -e vnc.vencrypt_auth_type_ack -e vnc.auth_result
        -e vnc.share_desktop_flag -e vnc.width -e vnc.height -e vnc.desktop_name
        -e vnc.client_message_type -e vnc.server_message_type -e vnc.fb_update_num_rects
        -e vnc.fb_update_encoding_type -e vnc.client_set_encodings_encoding_type -e _ws.col.Info)
    cols="# columns: frame trel stream sport dport server_proto_ver client_proto_ver num_security_types security_types client_security_type vencrypt_server_major vencrypt_server_minor vencrypt_client_major vencrypt_client_minor vencrypt_version_ack vencrypt_num_subtypes vencrypt_subtypes(offered;chosen) vencrypt_subtype_ack auth_result share_flag width height desktop_name client_msg_type server_msg_type fb_rects fb_encodings set_encodings info"
    : >"$w/map"
    if [ $tlsflow = 1 ]; then
        echo "## VNC/RFB before TLS (-Y vnc, frames < $((toff + 1)))"
        echo "$cols"
        rows=$(q -Y "vnc && frame.number <= $toff" "${vf[@]:0:${#vf[@]}}" 2>/dev/null | sed 's/^/R\t/' | cut -f2-)
        printf '%s\n' "$rows" | awk -F'\t' -v OFS='\t' -v t0="$t0" '{ $2 = sprintf("%.6f", $2 - t0); print }'
        echo
        echo "## VNC/RFB inside VeNCrypt TLS (tshark's VNC dissector on what tshark decrypted)"
        echo "# tshark 4.0's VNC dissector does not dissect RFB after the TLS switch,"
        echo "# so tls2plain.py --rfb-prefix writes the plaintext tshark decrypts (one segment per original frame)"
        echo "# after a synthetic 4-segment RFB 3.8 / security-None prefix (not shown), and"
        echo "# tshark -d tcp.port==$port,vnc reads that from SecurityResult on; frame numbers are mapped back"
        python3 "$dir/tls2plain.py" "$tcap" "$keys" "$port" "$w/plain.pcap" "$w/map" --rfb-prefix --frame-offset "$toff"
        rows=$(tshark -r "$w/plain.pcap" -o tcp.desegment_tcp_streams:TRUE -d "tcp.port==$port,vnc" -Y vnc "${vf[@]}" 2>/dev/null)
    else
        echo "## VNC/RFB messages (-Y vnc)"
        rows=$(q -Y vnc "${vf[@]}")
    fi
    echo "$cols"
    printf '%s\n' "$rows" | awk -F'\t' -v OFS='\t' -v t0="$t0" -v map="$w/map" -v tls=$tlsflow '
        BEGIN { while ((getline l < map) > 0) { split(l, a, " "); m[a[1]] = a[2] } }
        { if (tls) { if (!($1 in m)) next; $1 = m[$1] } $2 = sprintf("%.6f", $2 - t0); print }'
    ;;
esac
echo
echo "## tshark -q -z expert,note (whole capture, ${decode[*]})"
q -q -z expert,note | sed '/^$/d'
} >"$txt"
