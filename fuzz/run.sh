#!/usr/bin/env bash
# Time-bounded libFuzzer run of one target, seeded from the committed corpora.
#   fuzz/run.sh TARGET [SECONDS]      (default 600 s)
# Targets: capture_read reassembly decoder decode_file bugreport_zip timeline
#          replay_spec tls
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is
# told to accept the sanitizer flags with RUSTC_BOOTSTRAP=1, since this
# machine has no nightly. Crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
target=${1:?target}
seconds=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus/$target"
mkdir -p "$corpus"
case "$target" in
  capture_read|decode_file)
    # Every capture we have, real and hostile, is a seed.
    find "$here/../corpora" -type f \( -name '*.pcap' -o -name '*.pcapng' \) -size -2M \
      -exec cp -n {} "$corpus/" \; ;;
  bugreport_zip)
    find "$here/../corpora" -type f -name '*.zip' -exec cp -n {} "$corpus/" \; ;;
  timeline)
    find "$here/../corpora/synthetic" "$here/../replays" "$here/../corpora/hostile" -type f -name '*.toml' \
      -exec cp -n {} "$corpus/" \; ;;
  replay_spec)
    find "$here/../replays" "$here/../corpora/hostile" -type f -name '*.toml' \
      -exec cp -n {} "$corpus/" \; ;;
esac
cd "$here/.."
export RUSTC_BOOTSTRAP=1
extra=()
# decode_file runs worker threads; glibc's per-thread destructor list is
# reported as a 32-byte leak when they exit, which is not ours to fix.
[ "$target" = decode_file ] && extra+=(-detect_leaks=0)
# One input may allocate at most 256 MB (-malloc_limit_mb): the bound that
# matters. The process as a whole may grow to 1 GB: after ~800 k zip inputs
# AddressSanitizer's quarantine (143 MB) and libFuzzer's corpus took it past
# 512 MB with 38 MB of live heap; the input it stopped on ran alone in
# 6 MB.
exec cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
  -max_total_time="$seconds" -timeout=2 -rss_limit_mb=1024 -malloc_limit_mb=256 \
  -print_final_stats=1 "${extra[@]}"
