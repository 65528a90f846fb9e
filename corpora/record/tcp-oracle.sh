#!/usr/bin/env bash
# Writes <capture>.tcp-ends.txt beside each capture given (default: every
# capture under corpora/public): tshark's view of every TCP segment's stream
# index, sender and FIN/RST flags, which tests use to check how tether says
# each connection ended. Needs tshark (apt-get install tshark).
set -euo pipefail
cd "$(dirname "$0")/../.."
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find corpora/public -name '*.pcap' -o -name '*.pcapng' | sort)
fi
for f in "${files[@]}"; do
  {
    echo "# tshark $(tshark --version | head -1 | sed 's/^TShark (Wireshark) //')"
    echo "# columns: tcp.stream ip.src ipv6.src tcp.srcport tcp.flags.fin tcp.flags.reset"
    tshark -r "$f" -Y tcp -T fields -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport \
      -e tcp.flags.fin -e tcp.flags.reset
  } > "$f.tcp-ends.txt"
done
