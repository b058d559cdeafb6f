#!/usr/bin/env bash
# Front end over a large store (issue 19): time from `serve --roles frontend`
# to its first WHOIS and RDAP answers, then RSS after a bounded mixed load
# (wrk on RDAP domain lookups, WHOIS queries, API reads), sampled as it runs.
#   benches/frontend_start.sh STORE.redb NAMES.txt [LOAD_SECONDS] [CACHE_MIB]
# STORE.redb: e.g. target/rdap-bench/store-1000000-compacted.redb (made by
# benches/rdap_load.sh); NAMES.txt: domain names in it, one a line (the
# same bench's names-N.txt). The store is copied first (serve locks it).
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?store file}; names=${2:?names file}
secs=${3:-120}; cache_mib=${4:-1024}
bin=target/release/zonekeeper
[ -x "$bin" ] || cargo build --release --locked --bin zonekeeper
command -v wrk >/dev/null || { echo "wrk is required" >&2; exit 2; }
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cp "$store" "$dir/store.redb"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wp=$(free_port); hp=$(free_port)
cat >"$dir/zk.toml" <<EOF
zones = ["ru", "рф"]
[store]
path = "$dir/store.redb"
cache_mib = $cache_mib
[serve]
roles = ["frontend"]
[whois]
listen = "127.0.0.1:$wp"
rate_limit_exempt = ["127.0.0.0/8"]
[http]
listen = "127.0.0.1:$hp"
[rdap]
rate_limit_exempt = ["127.0.0.0/8"]
EOF
first=$(head -1 "$names")
# Keep the OS page cache of the file warm for both runs alike.
cat "$dir/store.redb" >/dev/null
t0=$(date +%s.%N)
"$bin" serve --config "$dir/zk.toml" >"$dir/serve.log" 2>&1 &
pid=$!; pids+=("$pid")
# One WHOIS query over bash's /dev/tcp (no extra tool).
q() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$wp"' && printf "%s\r\n" "$0" >&3 && cat <&3' "$1" 2>/dev/null; }
until out=$(q "$first") && grep -q '^domain:' <<<"$out"; do
  kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.02
done
t1=$(date +%s.%N)
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/rdap/domain/$first")
t2=$(date +%s.%N)
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %d MiB  ", $1, $2/1024}' "/proc/$pid/status"; }
printf 'start to first WHOIS answer: %.2f s; first RDAP answer (%s) at %.2f s; %s\n' \
  "$(echo "$t1 - $t0" | bc)" "$code" "$(echo "$t2 - $t0" | bc)" "$(rss)"
# Mixed load: RDAP (wrk, random names), WHOIS and API reads in loops.
lua="$dir/names.lua"
{ echo 'local names = {'; shuf -n 20000 --random-source=<(yes) "$names" | sed 's/.*/"&",/'; echo '}'
  echo 'request = function() return wrk.format("GET", wrk.path .. "domain/" .. names[math.random(#names)]) end'; } >"$lua"
wrk -t 1 -c 16 -d "${secs}s" -s "$lua" "http://127.0.0.1:$hp/rdap/" >"$dir/wrk.txt" 2>&1 &
pids+=("$!")
mapfile -t sample < <(shuf -n 2000 "$names")
end=$(( $(date +%s) + secs ))
( while [ "$(date +%s)" -lt "$end" ]; do
    q "${sample[RANDOM % ${#sample[@]}]}" >/dev/null || true
  done ) &
pids+=("$!")
( while [ "$(date +%s)" -lt "$end" ]; do
    curl -s -o /dev/null "http://127.0.0.1:$hp/healthz"; curl -s -o /dev/null "http://127.0.0.1:$hp/rdap/nameserver/ns1.hosting1.example"
  done ) &
pids+=("$!")
while [ "$(date +%s)" -lt "$end" ]; do sleep 30; echo "  t+$(( secs - (end - $(date +%s)) )) s: $(rss)"; done
wait "${pids[@]:1}" 2>/dev/null || true
grep -E 'Requests/sec|Non-2xx' "$dir/wrk.txt" || true
echo "after ${secs} s of mixed load: $(rss) (store.cache_mib = $cache_mib; load average $(cut -d' ' -f1-3 /proc/loadavg))"
