# Shared by benches/bench.sh and benches/profile.sh: process control, the gateway's
# configuration, wrk runs and their table rows. Sourced, not run. The caller sets T (its
# temporary directory), THREADS, CONNS, DURATION and POOL_CAP as it needs them, and keeps
# the PIDS array of the processes it started.

say() { printf '%s\n' "$*" >&2; }
step() { printf '\n== %s\n' "$*" >&2; }
die() {
  say "benches/$(basename "$0"): $*"
  exit 1
}

# one_at_a_time: refuse to start while another benches/ script runs on this machine. Two
# runs share the cores, so neither's figures would mean anything, and one's wrk can reach
# the other's servers through a port both took (a region refusing the other run's
# signatures: 401s in a baseline). The lock goes with the process.
one_at_a_time() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"${TMPDIR:-/tmp}/hutong-benches.lock"
  flock -n 9 || die "another benches/ script is running on this machine; wait for it to end"
}

# cleanup: the EXIT trap. Stops wrk ($WRK_PID) and every process in PIDS, giving each
# STOP_WAIT_TENTHS tenths of a second (50) after SIGTERM, then removes $T unless
# BENCH_KEEP=1.
cleanup() {
  local rc=$?
  trap - ERR
  for pid in ${WRK_PID:-} "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq "${STOP_WAIT_TENTHS:-50}"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $T"; else rm -rf "$T"; fi
  exit "$rc"
}

# need_tools T…: install the Debian packages of missing tools (the wrk, nginx, curl, jq
# packages are named after them).
need_tools() {
  local need=() t
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
  if ((${#need[@]})); then
    say "installing ${need[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq "${need[@]}" >/dev/null || die "cannot install ${need[*]}"
  fi
  for t in "$@" split ss; do command -v "$t" >/dev/null 2>&1 || die "$t is missing"; done
}

# start NAME CMD…: run CMD in the background, stdout to $T/NAME.out, stderr to $T/NAME.err.
start() {
  local name=$1
  shift
  "$@" >"$T/$name.out" 2>"$T/$name.err" &
  PIDS+=("$!")
  eval "PID_$name=$!"
}

# wait_line NAME REGEX [SECONDS]: wait (10 s unless told) for REGEX in $T/NAME.out; print
# the line.
wait_line() {
  local name=$1 re=$2 pid
  pid=$(eval "echo \$PID_$name")
  for _ in $(seq $((${3:-10} * 10))); do
    if grep -Eq "$re" "$T/$name.out" 2>/dev/null; then
      grep -Em1 "$re" "$T/$name.out"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  say "$name did not start; its output:"
  tail -n 20 "$T/$name.out" "$T/$name.err" >&2 || true
  die "$name did not print a line matching /$re/"
}

# listening NAME: the host:port of a process that prints `listening on http(s)://HOST:PORT`.
listening() { wait_line "$1" 'listening on https?://' | sed -E 's#.*listening on https?://([0-9.:]+).*#\1#'; }

free_port() { # a port below the ephemeral range that no socket uses
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
  ((low > 11000)) || low=61000
  for p in $(shuf -i 10000-$((low - 1)) -n 100); do
    if [[ -z $(ss -Htan "sport = :$p") ]]; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

hexrand() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# gateway_toml CACHE_ENTRIES AUDIT_SYNC [GATEWAY_LINES] [CACHE_LINES]: the head of a
# benchmark's gateway configuration (config/hutong.toml's settings with the benchmark's
# files): no mTLS (wrk has no client certificates), limits out of reach, the given cache
# size and audit policy. Extra lines go into [gateway] and [cache].
gateway_toml() {
  cat <<EOT
# $(basename "$0"): generated; see config/hutong.toml for the documented default.
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
tls_cert_file = "certs/server.crt.pem"
tls_key_file = "certs/server.key.pem"
generate_dev_certs = false
max_body_bytes = 2097152
max_header_bytes = 16384
header_read_timeout_ms = 5000
request_timeout_ms = 10000
max_concurrency = 4096
shutdown_grace_ms = 2000

[gateway]
app_id = "GW0000000001"
data_dir = "data"
signing_key_file = "gw-sign.key.pem"
encryption_key_file = "keys/gw-enc.key.pem"
pseudonym_secret_file = "keys/pseudonym.hex"
generate_keys = true
${3:-}

[auth]
require_token = true
jwt_key_file = "keys/jwt-es256.key.pem"
issuer = "hutong"
audience = "hutong"
token_ttl_secs = 3600

[limits]
per_ip = { per_second = 1000000, burst = 1000000 }
default_per_client = { per_second = 1000000, burst = 1000000 }
default_per_client_service = { per_second = 1000000, burst = 1000000 }

[cache]
max_entries = $1
max_ttl_ms = 300000
${4:-}

[audit]
sync = "$2"
sync_interval_ms = ${BENCH_AUDIT_INTERVAL_MS:-10}
EOT
}

# client_toml APPID REGION SERVICES SIGN_TYPES [EXTRA] [ROLE]: a client of the gateway with
# the benchmark's keys ($CL_MAC, $CL_SM4, client-sm2.pub.pem).
client_toml() {
  cat <<EOT

[[client]]
app_id = "$1"
region = "$2"
role = "${6:-verifier}"
services = $3
regions = ["*"]
sign_types = $4
sm2_public_key = "@client-sm2.pub.pem"
mac_key_hex = "$CL_MAC"
sm4_key_hex = "$CL_SM4"
require_mtls = false
${5:-}
EOT
}

# profile FILE APPID SIGN_TYPE GATEWAY_URL GATEWAY_KEY MAC SM4 [TOKEN_FILE]: a caller's profile
# for `hutong client --as`, with the benchmark's SM2 key and CA.
profile() {
  local token=""
  [[ -z ${8:-} ]] || token="token_file = \"$8\""
  cat >"$1" <<EOT
gateway = "$4"
app_id = "$2"
sign_type = "$3"
sm2_key_file = "$T/client-sm2.key.pem"
mac_key_hex = "$6"
sm4_key_hex = "$7"
gateway_sign_key_file = "$5"
ca_file = "$T/certs/ca.crt.pem"
$token
EOT
}

# national_region_toml CODE ISSUER ADDR SIM_KEYS_DIR: a `hutong sim --national` region, the
# gateway its client with $GW_MAC and $GW_SM4.
national_region_toml() {
  cat <<EOT

[[region]]
code = "$1"
name = "national-envelope simulator"
url = "http://$3"
issuer_ids = ["$2"]
public_key = "@$4/sim-response.pub.pem"
gateway_mac_key_hex = "$GW_MAC"
gateway_sm4_key_hex = "$GW_SM4"
timeout_ms = 3000
connect_timeout_ms = 500
# The simulator's statuses were set up to 7 days ago; 8 days keeps them cacheable.
validity_secs = 691200
EOT
}

busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

cpu_ticks() { # user+system clock ticks of the given processes
  local sum=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$sum"
}

rss_kb() { # resident set size of the given processes, kB
  local sum=0 p
  for p in "$@"; do
    [[ -r /proc/$p/status ]] && sum=$((sum + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
  done
  echo "$sum"
}

# write_lua: the wrk scripts.
#
# bench.lua: thread i sends the lines of BENCH_BODIES.<i>, each once, in order (or, with
# BENCH_REPEAT=1, the first line again and again: a request the target may see twice); it
# counts HTTP statuses, 200 answers without the success marker BENCH_OK ("code":"0" unless
# set: a region's dialect has its own), and lists that ran out (wraps).
# BENCH_HEADERS names a file of extra header lines.
#
# paced.lua: the same, with one connection per thread, each sending at BENCH_RATE/threads
# requests a second on a fixed schedule (late requests are sent at once, not skipped, and
# timed from when they were due), and timing each exchange itself: the latencies of answers with code 0 and of 1007 refusals
# are kept apart, so the admitted requests' p99 is known in a run that is mostly refused.
write_lua() {
  cat >"$T/common.lua" <<'EOF'
local counter = 0
threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function load_bodies()
  local name = os.getenv("BENCH_BODIES") .. "." .. string.format("%02d", tid)
  local f = assert(io.open(name, "rb"))
  data = f:read("*a")
  f:close()
  pos, wraps, badcode, statuses = 1, 0, 0, {}
  repeat_one = os.getenv("BENCH_REPEAT") == "1"
  ok_marker = os.getenv("BENCH_OK") or '"code":"0"'
  local token = os.getenv("BENCH_TOKEN") or ""
  local extra = ""
  if token ~= "" then extra = "Authorization: Bearer " .. token .. "\r\n" end
  local hfile = os.getenv("BENCH_HEADERS") or ""
  if hfile ~= "" then
    local h = assert(io.open(hfile, "rb"))
    for line in h:lines() do
      if line ~= "" then extra = extra .. line .. "\r\n" end
    end
    h:close()
  end
  local ctype = os.getenv("BENCH_CTYPE") or "application/json"
  head = "POST " .. os.getenv("BENCH_PATH") .. " HTTP/1.1\r\nHost: " .. os.getenv("BENCH_HOST")
    .. "\r\nContent-Type: " .. ctype .. "\r\n" .. extra .. "Content-Length: "
end

function next_body()
  local e = string.find(data, "\n", pos, true)
  if e == nil then
    pos, wraps = 1, wraps + 1
    e = string.find(data, "\n", pos, true)
  end
  local body = string.sub(data, pos, e - 1)
  if not repeat_one then pos = e + 1 end
  return head .. #body .. "\r\n\r\n" .. body
end

function count(status, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and not string.find(body, ok_marker, 1, true) then
    badcode = badcode + 1
  end
end

function totals()
  local st, wr, bad = {}, 0, 0
  for _, t in ipairs(threads) do
    wr = wr + (t:get("wraps") or 0)
    bad = bad + (t:get("badcode") or 0)
    for k, v in pairs(t:get("statuses") or {}) do st[k] = (st[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  return (#parts > 0) and table.concat(parts, ",") or "none", bad, wr
end
EOF
  cat "$T/common.lua" >"$T/bench.lua"
  cat >>"$T/bench.lua" <<'EOF'

function init(args) load_bodies() end
function request() return next_body() end
function response(status, headers, body) count(status, body) end

function done(summary, latency, requests)
  local st, bad, wr = totals()
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d statuses=%s "
    .. "badcode=%d sockerr=%d timeouts=%d wraps=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    st, bad, e.connect + e.read + e.write, e.timeout, wr))
end
EOF
  cat "$T/common.lua" >"$T/paced.lua"
  cat >>"$T/paced.lua" <<'EOF'

local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_ts; int clock_gettime(int, bench_ts *); ]]
local ts = ffi.new("bench_ts")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

function init(args)
  load_bodies()
  interval_us = 1e6 * tonumber(os.getenv("BENCH_THREADS_N")) / tonumber(os.getenv("BENCH_RATE"))
  lat_ok, lat_limited, other = {}, {}, 0
  sent_at, due, scheduled = nil, nil, nil
end

-- The schedule never restarts: a request due during a stall is sent as soon as the
-- connection is free, and its latency counts from when it was due (no coordinated
-- omission: a stall shows as every request it delayed, not as one slow answer).
function delay()
  local now = now_us()
  if due == nil then due = now end
  local wait = due - now
  scheduled = due
  due = due + interval_us
  if wait < 1000 then return 0 end
  return math.floor(wait / 1000)
end

function request()
  -- Sent early (the timer's millisecond granularity): from now; sent late: from when due.
  sent_at = math.min(now_us(), scheduled or now_us())
  return next_body()
end

function response(status, headers, body)
  local us = now_us() - sent_at
  count(status, body)
  if status == 200 and string.find(body, '"code":"0"', 1, true) then
    lat_ok[#lat_ok + 1] = us
  elseif string.find(body, '"code":"1007"', 1, true) then
    lat_limited[#lat_limited + 1] = us
  else
    other = other + 1
  end
end

local function pct(t, p)
  if #t == 0 then return 0 end
  table.sort(t)
  return t[math.max(1, math.ceil(#t * p / 100))]
end

function done(summary, latency, requests)
  local st, bad, wr = totals()
  local ok, lim, oth = {}, {}, 0
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("lat_ok") or {}) do ok[#ok + 1] = v end
    for _, v in ipairs(t:get("lat_limited") or {}) do lim[#lim + 1] = v end
    oth = oth + (t:get("other") or 0)
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d statuses=%s "
    .. "badcode=%d sockerr=%d timeouts=%d wraps=%d admitted=%d limited=%d other=%d "
    .. "admitted_p50_us=%d admitted_p99_us=%d limited_p99_us=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    st, bad, e.connect + e.read + e.write, e.timeout, wr, #ok, #lim, oth,
    pct(ok, 50), pct(ok, 99), pct(lim, 99)))
end
EOF
}

# seal NAME SERVICE BODY PROFILE N: N sealed requests, dealt round-robin to the wrk threads.
# With N = lines, each line of BODY is sealed once instead.
seal() {
  local name=$1 service=$2 body=$3 prof=$4 n=$5 got want
  rm -f "$T/$name".[0-9][0-9]
  if [[ $n == lines ]]; then
    "$H" client "$service" --body "$body" --as "$prof" --seal-lines \
      | split -n "r/$THREADS" -d -a 2 - "$T/$name."
    want=$(grep -c . "$body")
  else
    "$H" client "$service" --body "$body" --as "$prof" --seal-only "$n" \
      | split -n "r/$THREADS" -d -a 2 - "$T/$name."
    want=$n
  fi
  got=$(cat "$T/$name".[0-9][0-9] | wc -l)
  ((got == want)) || die "sealed $got requests of $want"
}

# one_body NAME FILE: FILE's content as the only line for every wrk thread (BENCH_REPEAT=1).
one_body() {
  local name=$1 file=$2 i
  rm -f "$T/$name".[0-9][0-9]
  for ((i = 0; i < THREADS; i++)); do
    { tr -d '\n' <"$file"; echo; } >"$T/$name.$(printf '%02d' "$i")"
  done
}

pool() { # MAX_RPS → requests to seal
  local n=$(($1 * DURATION))
  ((n > POOL_CAP)) && n=$POOL_CAP
  echo "$n"
}

# child_secs AFTER BEFORE: CPU seconds (user + system) of the children reaped in between,
# from two outputs of the `times` builtin (second line: children's user and system time).
child_secs() {
  awk 'function s(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); return m * 60 + t }
       FNR == 2 { v = s($1) + s($2); if (FILENAME == ARGV[1]) a = v; else b = v }
       END { printf "%.3f\n", a - b }' "$1" "$2"
}

# bench KEY URL PATH TOKEN BODIES CPU_PIDS…: one wrk run; its RESULT line goes to
# $T/KEY.result with the CPU ticks and RSS of CPU_PIDS (the servers under test) and the CPU
# of everything else on the machine that is neither this benchmark's processes nor wrk
# ("others": another tenant). Environment: BENCH_SCRIPT (bench.lua or paced.lua),
# BENCH_REPEAT, BENCH_HEADERS, BENCH_CTYPE, BENCH_OK, BENCH_RATE, WRK_THREADS/WRK_CONNS/WRK_SECS,
# BENCH_REGION_PID (a relay's simulator, one of CPU_PIDS: its own ticks go to region_ticks).
bench() {
  local key=$1 url=$2 path=$3 token=$4 bodies=$5 t0 t1 a0 a1 m0 m1 r0 r1 wrk_ticks line
  local threads=${WRK_THREADS:-$THREADS} conns=${WRK_CONNS:-$CONNS} secs=${WRK_SECS:-$DURATION}
  local region=${BENCH_REGION_PID:-}
  shift 5
  r0=$(cpu_ticks ${region:+"$region"})
  t0=$(cpu_ticks "$@")
  a0=$(cpu_ticks "${PIDS[@]}" $NGINX_PIDS)
  m0=$(busy_ticks)
  times >"$T/$key.times0" # this shell's children's CPU: wrk's, once it is reaped
  # In the background, so that a signal to this script ends the run at once.
  BENCH_BODIES="$T/$bodies" BENCH_PATH=$path BENCH_HOST=${url#*://} BENCH_TOKEN=$token \
    BENCH_THREADS_N=$threads \
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout "${WRK_TIMEOUT:-5s}" -s "$T/${BENCH_SCRIPT:-bench.lua}" "$url$path" >"$T/$key.wrk" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$T/$key.wrk" >&2; die "wrk failed ($key)"; }
  WRK_PID=""
  times >"$T/$key.times1"
  m1=$(busy_ticks)
  a1=$(cpu_ticks "${PIDS[@]}" $NGINX_PIDS)
  t1=$(cpu_ticks "$@")
  r1=$(cpu_ticks ${region:+"$region"})
  wrk_ticks=$(child_secs "$T/$key.times1" "$T/$key.times0" | awk -v h="$TICKS" '{printf "%.0f", $1 * h}')
  line=$(grep '^RESULT ' "$T/$key.wrk") || { cat "$T/$key.wrk" >&2; die "wrk printed no result ($key)"; }
  printf '%s cpu_ticks=%s wrk_ticks=%s other_ticks=%s rss_kb=%s region_ticks=%s\n' "$line" "$((t1 - t0))" \
    "$wrk_ticks" "$((m1 - m0 - (a1 - a0) - wrk_ticks))" "$(rss_kb "$@")" "$((r1 - r0))" >"$T/$key.result"
  say "$key: $(field "$key" requests) requests, $(rps "$key") req/s, p99 $(field "$key" p99_us) µs"
}

field() { sed -E "s/.* $2=([^ ]*).*/\1/" "$T/$1.result"; }
# rps KEY: successful answers a second (HTTP 2xx with the success marker); a refused
# replay or an error answer is cheaper than the work, so it is not counted as done.
rps() {
  awk -v r="$(field "$1" requests)" -v bad="$(answered_badly "$1")" -v d="$(field "$1" duration_us)" \
    'BEGIN{ok = r - bad; printf "%.1f", (ok < 0 ? 0 : ok) / (d / 1e6)}'
}
# sent_rps KEY: every answer a second, refusals included ((e) sends to be refused).
sent_rps() { awk -v r="$(field "$1" requests)" -v d="$(field "$1" duration_us)" 'BEGIN{printf "%.1f", r / (d / 1e6)}'; }
# cpu_split KEY: a relay run's CPU microseconds a request (every answer) of the server under
# test (the gateway, or nginx's workers), of its simulator (BENCH_REGION_PID) and of wrk, and
# their sum: where the two runs of a relay differ.
cpu_split() {
  awk -v r="$(field "$1" requests)" -v c="$(field "$1" cpu_ticks)" -v g="$(field "$1" region_ticks)" \
    -v w="$(field "$1" wrk_ticks)" -v h="$TICKS" 'BEGIN{u = (r > 0 ? 1e6 / h / r : 0)
      printf "%.1f + %.1f + %.1f = %.1f µs", (c - g) * u, g * u, w * u, (c + w) * u}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}'; }
# per_core KEY: successful answers a second per core of CPU the servers under test used.
per_core() {
  awk -v r="$(rps "$1")" -v t="$(field "$1" cpu_ticks)" -v d="$(field "$1" duration_us)" -v h="$TICKS" \
    'BEGIN{c = t / h / (d / 1e6); printf "%.1f", (c > 0 ? r / c : 0)}'
}
met() { awk -v a="$1" -v b="$2" 'BEGIN{print ((a >= b) ? "yes" : "NO")}'; }
# verdict VALUE TARGET KEY...: yes when VALUE ≥ TARGET and no KEY had an error or ran out
# of distinct requests (a figure with errors in it is not a result).
verdict() {
  local v=$1 t=$2 k
  shift 2
  for k in "$@"; do
    if (($(errors_of "$k") > 0)) || { [[ $(field "$k" wraps) != 0 && $k != static ]]; }; then
      echo NO
      return
    fi
  done
  met "$v" "$t"
}
ms() { awk -v u="$1" 'BEGIN{printf "%.2f", u / 1000}'; }

answered_badly() { # KEY → non-2xx answers + 200s without success (both in wrk's requests)
  local k=$1 nonok
  nonok=$(tr ',' '\n' <<<"$(field "$k" statuses)" | awk -F= '$1 !~ /^2/ && $2 != "" {s += $2} END {print s + 0}')
  echo $((nonok + $(field "$k" badcode)))
}

errors_of() { # KEY → non-2xx answers + 200s without success + socket errors + timeouts
  local k=$1
  echo $(($(answered_badly "$k") + $(field "$k" sockerr) + $(field "$k" timeouts)))
}

# The table's columns.
header() {
  printf "  %-34s %9s %7s %7s %6s %7s  %5s %9s %5s %6s  %s\n" "" "req/s" "p50 ms" "p99 ms" "errors" "RSS MiB" \
    "cores" "req/s/core" "wrk" "others" "HTTP statuses"
}

row() { # LABEL KEY → one table row from a wrk result
  local k=$2 dur cores wcores others
  dur=$(field "$k" duration_us)
  cores=$(awk -v t="$(field "$k" cpu_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{printf "%.2f", t / h / (d / 1e6)}')
  wcores=$(awk -v t="$(field "$k" wrk_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{printf "%.2f", t / h / (d / 1e6)}')
  others=$(awk -v t="$(field "$k" other_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{o = t / h / (d / 1e6); printf "%.2f", (o < 0 ? 0 : o)}')
  awk -v l="$1" -v rate="$(rps "$k")" -v p50="$(field "$k" p50_us)" -v p99="$(field "$k" p99_us)" \
    -v e="$(errors_of "$k")" -v s="$(field "$k" statuses)" -v c="$cores" -v w="$wcores" -v o="$others" \
    -v rss="$(field "$k" rss_kb)" 'BEGIN {
      printf "  %-34s %9.0f %7.2f %7.2f %6d %7.0f  %5s %9.0f %5s %6s  %s\n", l, rate, p50 / 1000, p99 / 1000, e,
        rss / 1024, c, (c > 0 ? rate / c : 0), w, o, s }'
  if [[ $(field "$k" wraps) != 0 && ${BENCH_REPEAT:-0} != 1 && $k != static ]]; then
    say "  warning: $k ran out of distinct requests ($(field "$k" wraps) wraps): raise BENCH_MAX_RPS_*"
  fi
}

# inproc LABEL RATE THREADS SECS CORES OTHERS: a row for a rate timed inside one process.
inproc() {
  printf "  %-34s %9.0f %7s %7s %6s %7s  %5s %9s %5s %6s  %s\n" "$1" "$2" "-" "-" "-" "-" "$5" \
    "$(awk -v r="$2" -v c="$5" 'BEGIN{printf "%.0f", (c > 0 ? r / c : 0)}')" "-" "$6" "($3 threads, $4 s, in process)"
}
