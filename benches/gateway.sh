#!/usr/bin/env bash
# The gateway's throughput next to nginx, in one run, on this machine (README "Performance",
# "Gateway"):
#
#   1. verifyCode of a cached PHIC1 code, sign type HMAC-SM3, through the gateway over TLS,
#      vs nginx answering a static body of the same size over TLS;
#   2. relay of generateCode by userToken (not cached: the gateway caches verifyCode and
#      queryHealthInfo only) through the gateway to `hutong sim --national`, vs nginx
#      proxy_pass of the same kind of request (sealed with the gateway's own identity at
#      the simulator) straight to an identical simulator. Not applyCodeAccess by default:
#      the simulator keeps each authCode it grants (at most 200,000, live for 300 s, and
#      past that every grant sweeps the table), which nginx's side reaches within a run;
#      BENCH_RELAY_SERVICE=applyCodeAccess measures it anyway. BENCH_RELAY_SERVICE=
#      queryHealthInfo relays the holder's query by authCode with the gateway's
#      queryHealthInfo cache off ([cache] query_health_info = false), so every query is a
#      relay;
#   3. verifyCode of a cached code with sign type SM2, vs the bound "one SM2 verify + one
#      SM2 sign per request" timed by the same binary in the same run, on every core.
#
# Everything runs on 127.0.0.1 with `wrk` (HTTP/1.1 keep-alive, TLS). The envelope refuses
# a replayed nonce and a timestamp off by more than 300 s, so before each run
# `hutong client … --seal-only N` seals N distinct requests and each wrk thread sends its
# own share once. Keys, certificates, configuration, the gateway's store and the logs live
# in a temporary directory that is removed at the end (BENCH_KEEP=1 keeps it).
#
# Usage: bash benches/gateway.sh
# Knobs (environment): BENCH_DURATION (seconds per run, 10), BENCH_CONNECTIONS (32),
# BENCH_THREADS (wrk threads, 2), BENCH_HUTONG_LOG (the gateway's log filter, warn: nginx
# runs with access_log off), BENCH_AUDIT_SYNC (the gateway's [audit] sync policy: interval,
# the default here, or commit), BENCH_SM2_BOUND_SECS (3), BENCH_RELAY_SERVICE (generateCode,
# applyCodeAccess or queryHealthInfo), BENCH_NO_BUILD=1 (skip cargo build), BENCH_KEEP=1 (keep the directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="bash benches/gateway.sh${*:+ $*}"
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
LOG_LEVEL=${BENCH_HUTONG_LOG:-warn}
BOUND_SECS=${BENCH_SM2_BOUND_SECS:-3}
RELAY=${BENCH_RELAY_SERVICE:-generateCode}
AUDIT_SYNC=${BENCH_AUDIT_SYNC:-interval}
# Largest rate each pool of sealed requests covers for DURATION seconds. The gateway keeps
# at most 500,000 nonces per client for 600 s, so every scenario has its own client and no
# pool exceeds 480,000.
MAX_RPS_VERIFY=${BENCH_MAX_RPS_VERIFY:-45000}
MAX_RPS_RELAY=${BENCH_MAX_RPS_RELAY:-40000}
MAX_RPS_SM2=${BENCH_MAX_RPS_SM2:-6000}
POOL_CAP=480000

say() { printf '%s\n' "$*" >&2; }
step() { printf '\n== %s\n' "$*" >&2; }
die() {
  say "benches/gateway.sh: $*"
  exit 1
}
trap 'say "benches/gateway.sh: failed at line $LINENO: $BASH_COMMAND"' ERR

for v in DURATION CONNS THREADS BOUND_SECS MAX_RPS_VERIFY MAX_RPS_RELAY MAX_RPS_SM2; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
((CONNS >= THREADS)) || die "BENCH_CONNECTIONS must be at least BENCH_THREADS"
((THREADS <= 99)) || die "BENCH_THREADS must be at most 99"
[[ $AUDIT_SYNC == commit || $AUDIT_SYNC == interval ]] \
  || die "BENCH_AUDIT_SYNC must be commit or interval"
[[ $RELAY == generateCode || $RELAY == applyCodeAccess || $RELAY == queryHealthInfo ]] \
  || die "BENCH_RELAY_SERVICE must be generateCode, applyCodeAccess or queryHealthInfo"

# ---------------------------------------------------------------------------------------
step "tools"
need=()
for t in wrk nginx curl jq; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
if ((${#need[@]})); then
  say "installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq "${need[@]}" >/dev/null || die "cannot install ${need[*]}"
fi
for t in wrk nginx curl jq split ss; do
  command -v "$t" >/dev/null 2>&1 || die "$t is missing"
done
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
WRK_VERSION=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}' || true)

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  step "cargo build --release"
  (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
fi
H="$ROOT/target/release/hutong"
[[ -x $H ]] || die "$H is missing: run cargo build --release"

# ---------------------------------------------------------------------------------------
T=$(mktemp -d /tmp/hutong-bench.XXXXXX)
PIDS=()
WRK_PID=""
cleanup() {
  local rc=$?
  trap - ERR
  for pid in $WRK_PID "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    say "kept $T"
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD…: run CMD in the background, stdout to $T/NAME.out, stderr to $T/NAME.err.
start() {
  local name=$1
  shift
  "$@" >"$T/$name.out" 2>"$T/$name.err" &
  PIDS+=("$!")
  eval "PID_$name=$!"
}

# wait_line NAME REGEX: wait (10 s at most) for REGEX in $T/NAME.out; print the line.
wait_line() {
  local name=$1 re=$2 pid
  pid=$(eval "echo \$PID_$name")
  for _ in $(seq 100); do
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

busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

cpu_ticks() { # user+system clock ticks of the given processes
  local sum=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$sum"
}

# ---------------------------------------------------------------------------------------
step "keys, certificates and two simulators in $T"
cd "$T"
"$H" certs dev --out "$T/certs" --clients A3300010001 >/dev/null
"$H" keys gen --out "$T/gw-sign" >/dev/null       # the gateway's SM2 key (answers, regions)
"$H" keys gen --out "$T/client-sm2" >/dev/null    # client A3300010003's SM2 key
GW_MAC=$(hexrand 32)  # the gateway's HMAC-SM3 key at the simulators
GW_SM4=$(hexrand 16)  # the gateway's SM4 key at the simulators
CL_MAC=$(hexrand 32)  # the bench clients' keys at the gateway
CL_SM4=$(hexrand 16)

# The gateway is the simulators' client. Two identical simulators (same seed, population and
# clients), so the gateway's relay and nginx's proxy each have a fresh one to themselves.
cat >"$T/sim-clients.toml" <<EOF
[[client]]
app_id = "GW0000000001"
sm2_public_key_file = "gw-sign.pub.pem"
mac_key_hex = "$GW_MAC"
sm4_key_hex = "$GW_SM4"
EOF
SIM_ARGS=(sim --national --clients "$T/sim-clients.toml" --listen 127.0.0.1:0 --seed 1
  --population 1000 --region 330000 --issuer 33000001 --code-ttl-secs 3600)
start simA "$H" "${SIM_ARGS[@]}" --keys-out "$T/simA"
start simB "$H" "${SIM_ARGS[@]}" --keys-out "$T/simB"
SIM_A=$(wait_line simA 'listening on http://' | sed -E 's#.*://##')
SIM_B=$(wait_line simB 'listening on http://' | sed -E 's#.*://##')
say "simulator behind the gateway: $SIM_A; behind nginx: $SIM_B"

# ---------------------------------------------------------------------------------------
step "the gateway"
# config/hutong.toml with the bench's files, no mTLS (wrk has no client certificates),
# limits far above any rate reached here, three clients (one per scenario: each has its own
# nonce quota) and one region, the simulator.
client_toml() { # APPID SERVICES SIGN_TYPES
  cat <<EOF

[[client]]
app_id = "$1"
region = "330106"
role = "verifier"
services = $2
regions = ["*"]
sign_types = $3
sm2_public_key = "@client-sm2.pub.pem"
mac_key_hex = "$CL_MAC"
sm4_key_hex = "$CL_SM4"
require_mtls = false
EOF
}
{
  cat <<EOF
# benches/gateway.sh: generated; see config/hutong.toml for the documented default.
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
max_entries = 200000
max_ttl_ms = 300000
# queryHealthInfo as the relay scenario: every query goes to the region (no cache).
query_health_info = $([[ $RELAY == queryHealthInfo ]] && echo false || echo true)

[audit]
sync = "$AUDIT_SYNC"
sync_interval_ms = 10
EOF
  client_toml A3300010001 '["verifyCode", "applyCodeAccess", "generateCode"]' '["HMAC-SM3"]'
  client_toml A3300010002 '["applyCodeAccess", "generateCode", "queryHealthInfo"]' '["HMAC-SM3"]'
  client_toml A3300010003 '["verifyCode"]' '["SM2"]'
  cat <<EOF

[[region]]
code = "330000"
name = "浙江 (simulator)"
url = "http://$SIM_A"
issuer_ids = ["33000001"]
public_key = "@simA/sim-response.pub.pem"
gateway_mac_key_hex = "$GW_MAC"
gateway_sm4_key_hex = "$GW_SM4"
timeout_ms = 3000
connect_timeout_ms = 500
# The simulator's statuses were set up to 7 days ago; 8 days keeps them cacheable.
validity_secs = 691200
EOF
} >"$T/hutong.toml"
for c in A3300010001 A3300010002 A3300010003; do
  "$H" token issue --client "$c" --config "$T/hutong.toml" --out "$T/token-$c" >/dev/null
done
start gateway env HUTONG_LOG="$LOG_LEVEL" "$H" serve --config "$T/hutong.toml"
GW_LINE=$(wait_line gateway 'listening on https://')
GW=$(sed -E 's#.*listening on https://([0-9.:]+).*#\1#' <<<"$GW_LINE")
GW_ADMIN=$(sed -E 's#.*admin http://([0-9.:]+).*#\1#' <<<"$GW_LINE")
say "gateway: https://$GW (admin http://$GW_ADMIN)"

profile() { # FILE APPID SIGN_TYPE GATEWAY_URL GATEWAY_KEY MAC SM4 [TOKEN_FILE]
  local token=""
  [[ -z ${8:-} ]] || token="token_file = \"$8\""
  cat >"$1" <<EOF
gateway = "$4"
app_id = "$2"
sign_type = "$3"
sm2_key_file = "$T/client-sm2.key.pem"
mac_key_hex = "$6"
sm4_key_hex = "$7"
gateway_sign_key_file = "$5"
ca_file = "$T/certs/ca.crt.pem"
$token
EOF
}
for c in A3300010001 A3300010002; do
  profile "$T/$c.toml" "$c" HMAC-SM3 "https://$GW" "$T/gw-sign.pub.pem" "$CL_MAC" "$CL_SM4" "$T/token-$c"
done
profile "$T/A3300010003.toml" A3300010003 SM2 "https://$GW" "$T/gw-sign.pub.pem" "$CL_MAC" "$CL_SM4" "$T/token-A3300010003"
# The gateway as the simulator knows it: for nginx's proxy_pass straight to simulator B.
profile "$T/gw-at-simB.toml" GW0000000001 HMAC-SM3 "http://$SIM_B" "$T/simB/sim-response.pub.pem" "$GW_MAC" "$GW_SM4"

call() { # SERVICE BODY PROFILE → the answer as JSON; fails unless code 0
  local out
  out=$("$H" client "$1" --body "$2" --as "$3") || {
    say "$out"
    die "hutong client $1 --as $(basename "$3") did not answer code 0"
  }
  printf '%s\n' "$out"
}

# A person of the simulators' population, a code for them, and the bodies of the scenarios.
USER_JSON=$("$H" client applyCodeAccess --body - --as /dev/null --sim-user 1:1000:330000:3)
printf '{"user":%s,"authType":"FACE","authProof":"bench"}\n' "$USER_JSON" >"$T/apply.json"
USER_TOKEN=$(call applyCodeAccess "$T/apply.json" "$T/A3300010001.toml" | jq -er '.bizContent.userToken')
printf '{"userToken":"%s"}\n' "$USER_TOKEN" >"$T/generate.json"
CODE=$(call generateCode "$T/generate.json" "$T/A3300010001.toml" | jq -er '.bizContent.codeContent')
[[ $CODE == *"pc=PHIC1."* ]] || die "generateCode gave no PHIC1 code: $CODE"
jq -nc --arg c "$CODE" '{codeContent: $c, verifier: {orgName: "某地铁站", deviceId: "G-01"}}' >"$T/verify.json"
case $RELAY in
  generateCode) RELAY_BODY=$T/generate.json RELAY_BODY_NG=$T/generate.json ;;
  applyCodeAccess) RELAY_BODY=$T/apply.json RELAY_BODY_NG=$T/apply.json ;;
  queryHealthInfo)
    # The holder's authCode, granted by each simulator to the gateway's appId: through the
    # gateway for its side, straight from simulator B for nginx's.
    AC_GW=$(call applyCodeAccess "$T/apply.json" "$T/A3300010002.toml" | jq -er '.bizContent.authCode')
    AC_NG=$(call applyCodeAccess "$T/apply.json" "$T/gw-at-simB.toml" | jq -er '.bizContent.authCode')
    RELAY_BODY=$T/query-gw.json RELAY_BODY_NG=$T/query-ng.json
    printf '{"user":%s,"authCode":"%s"}\n' "$USER_JSON" "$AC_GW" >"$RELAY_BODY"
    printf '{"user":%s,"authCode":"%s"}\n' "$USER_JSON" "$AC_NG" >"$RELAY_BODY_NG"
    ;;
esac
call "$RELAY" "$RELAY_BODY" "$T/A3300010002.toml" >/dev/null

# The answer nginx serves as its static body: a real answer of the gateway to scenario 1.
"$H" client verifyCode --body "$T/verify.json" --as "$T/A3300010001.toml" --seal-only 1 >"$T/one.json"
curl -sS --cacert "$T/certs/ca.crt.pem" -H "Authorization: Bearer $(cat "$T/token-A3300010001")" \
  -H 'Content-Type: application/json' --data-binary @"$T/one.json" \
  "https://$GW/phic/v1/verifyCode" -o "$T/static.json" -w '%{http_code}' >"$T/static.status"
[[ $(cat "$T/static.status") == 200 ]] && grep -q '"code":"0"' "$T/static.json" \
  || die "the gateway did not answer verifyCode with code 0: $(head -c 300 "$T/static.json")"
if grep -q "['\\\\\$]" "$T/static.json"; then die "the answer has characters nginx's return would change"; fi
STATIC_BYTES=$(wc -c <"$T/static.json")

# ---------------------------------------------------------------------------------------
step "nginx ($NGINX_VERSION)"
NG_PORT=$(free_port)
mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream sim { server $SIM_B; keepalive 64; }
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $T/certs/server.crt.pem;
        ssl_certificate_key $T/certs/server.key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /static {
            default_type "application/json; charset=utf-8";
            return 200 '$(cat "$T/static.json")';
        }
        location /phic/ {
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
nginx -t -q -c "$T/nginx/nginx.conf" -p "$T/nginx/" -e "$T/nginx/logs/error.log" \
  || die "nginx refused its configuration ($T/nginx/nginx.conf)"
start nginx nginx -c "$T/nginx/nginx.conf" -p "$T/nginx/" -e "$T/nginx/logs/error.log"
for _ in $(seq 100); do
  curl -sk -o /dev/null "https://127.0.0.1:$NG_PORT/static" -X POST -d x && break
  kill -0 "$PID_nginx" 2>/dev/null || { cat "$T/nginx/logs/error.log" >&2; die "nginx exited"; }
  sleep 0.1
done
NG_BYTES=$(curl -sk -X POST -d x "https://127.0.0.1:$NG_PORT/static" | wc -c)
((NG_BYTES == STATIC_BYTES)) || die "nginx serves $NG_BYTES bytes, the gateway $STATIC_BYTES"
# The proxied relay answers code 0 too.
"$H" client "$RELAY" --body "$RELAY_BODY_NG" --as "$T/gw-at-simB.toml" --seal-only 1 >"$T/one-b.json"
curl -sSk -H 'Content-Type: application/json' --data-binary @"$T/one-b.json" \
  "https://127.0.0.1:$NG_PORT/phic/v1/$RELAY" -o "$T/relay-b.json"
grep -q '"code":"0"' "$T/relay-b.json" \
  || die "the simulator behind nginx did not answer code 0: $(head -c 300 "$T/relay-b.json")"
NGINX_PIDS=$(pgrep -P "$PID_nginx" | tr '\n' ' ')
say "nginx on https://127.0.0.1:$NG_PORT (workers: $NGINX_PIDS)"

# ---------------------------------------------------------------------------------------
# The wrk script: thread i sends the lines of BENCH_BODIES.<i>, each once, in order; it
# counts HTTP statuses, 200 answers without "code":"0", and lists that ran out (wraps).
cat >"$T/bench.lua" <<'EOF'
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local name = os.getenv("BENCH_BODIES") .. "." .. string.format("%02d", tid)
  local f = assert(io.open(name, "rb"))
  data = f:read("*a")
  f:close()
  pos, wraps, badcode, statuses = 1, 0, 0, {}
  local token = os.getenv("BENCH_TOKEN") or ""
  local auth = ""
  if token ~= "" then auth = "Authorization: Bearer " .. token .. "\r\n" end
  head = "POST " .. os.getenv("BENCH_PATH") .. " HTTP/1.1\r\nHost: " .. os.getenv("BENCH_HOST")
    .. "\r\nContent-Type: application/json\r\n" .. auth .. "Content-Length: "
end

function request()
  local e = string.find(data, "\n", pos, true)
  if e == nil then
    pos, wraps = 1, wraps + 1
    e = string.find(data, "\n", pos, true)
  end
  local body = string.sub(data, pos, e - 1)
  pos = e + 1
  return head .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and not string.find(body, '"code":"0"', 1, true) then
    badcode = badcode + 1
  end
end

function done(summary, latency, requests)
  local st, wr, bad = {}, 0, 0
  for _, t in ipairs(threads) do
    wr = wr + (t:get("wraps") or 0)
    bad = bad + (t:get("badcode") or 0)
    for k, v in pairs(t:get("statuses") or {}) do st[k] = (st[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(st) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d statuses=%s "
    .. "badcode=%d sockerr=%d timeouts=%d wraps=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    (#parts > 0) and table.concat(parts, ",") or "none", bad,
    e.connect + e.read + e.write, e.timeout, wr))
end
EOF

# seal NAME SERVICE BODY PROFILE N: N sealed requests, dealt round-robin to the wrk threads.
seal() {
  local name=$1 service=$2 body=$3 prof=$4 n=$5 got
  rm -f "$T/$name".[0-9][0-9]
  "$H" client "$service" --body "$body" --as "$prof" --seal-only "$n" \
    | split -n "r/$THREADS" -d -a 2 - "$T/$name."
  got=$(cat "$T/$name".[0-9][0-9] | wc -l)
  ((got == n)) || die "sealed $got requests of $n"
}

pool() { # MAX_RPS → requests to seal
  local n=$(($1 * DURATION))
  ((n > POOL_CAP)) && n=$POOL_CAP
  echo "$n"
}

WRK_CMD="wrk -t$THREADS -c$CONNS -d${DURATION}s -s bench.lua"
# bench KEY URL PATH TOKEN BODIES CPU_PIDS…: one wrk run; its RESULT line goes to $T/KEY.result
# with the CPU ticks of CPU_PIDS (the servers under test) and of everything else on the
# machine that is neither this benchmark's processes nor wrk ("others": another tenant).
bench() {
  local key=$1 url=$2 path=$3 token=$4 bodies=$5 t0 t1 a0 a1 m0 m1 wrk_ticks line
  shift 5
  t0=$(cpu_ticks "$@")
  a0=$(cpu_ticks "${PIDS[@]}" $NGINX_PIDS)
  m0=$(busy_ticks)
  times >"$T/$key.times0" # this shell's children's CPU: wrk's, once it is reaped
  # In the background, so that a signal to this script ends the run at once.
  BENCH_BODIES="$T/$bodies" BENCH_PATH=$path BENCH_HOST=${url#https://} BENCH_TOKEN=$token \
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$T/bench.lua" "$url$path" >"$T/$key.wrk" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$T/$key.wrk" >&2; die "wrk failed ($key)"; }
  WRK_PID=""
  times >"$T/$key.times1"
  m1=$(busy_ticks)
  a1=$(cpu_ticks "${PIDS[@]}" $NGINX_PIDS)
  t1=$(cpu_ticks "$@")
  wrk_ticks=$(child_secs "$T/$key.times1" "$T/$key.times0" | awk -v h="$TICKS" '{printf "%.0f", $1 * h}')
  line=$(grep '^RESULT ' "$T/$key.wrk") || { cat "$T/$key.wrk" >&2; die "wrk printed no result ($key)"; }
  printf '%s cpu_ticks=%s wrk_ticks=%s other_ticks=%s\n' "$line" "$((t1 - t0))" "$wrk_ticks" \
    "$((m1 - m0 - (a1 - a0) - wrk_ticks))" >"$T/$key.result"
  say "$key: $(field "$key" requests) requests, $(awk -v r="$(field "$key" requests)" \
    -v d="$(field "$key" duration_us)" 'BEGIN{printf "%.0f", r / (d / 1e6)}') req/s"
}
# child_secs AFTER BEFORE: CPU seconds (user + system) of the children reaped in between,
# from two outputs of the `times` builtin (second line: children's user and system time).
child_secs() {
  awk 'function s(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); return m * 60 + t }
       FNR == 2 { v = s($1) + s($2); if (FILENAME == ARGV[1]) a = v; else b = v }
       END { printf "%.3f\n", a - b }' "$1" "$2"
}
field() { sed -E "s/.* $2=([^ ]*).*/\1/" "$T/$1.result"; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TICKS=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------
step "(1) verifyCode, cached PHIC1 code, HMAC-SM3"
call verifyCode "$T/verify.json" "$T/A3300010001.toml" >/dev/null  # fills the cache
seal verify-hmac verifyCode "$T/verify.json" "$T/A3300010001.toml" "$(pool "$MAX_RPS_VERIFY")"
bench static "https://127.0.0.1:$NG_PORT" /static "" verify-hmac $NGINX_PIDS
bench verify-hmac "https://$GW" /phic/v1/verifyCode "$(cat "$T/token-A3300010001")" verify-hmac "$PID_gateway"

step "(2) relay of $RELAY (not cached) to the simulator"
seal relay-nginx "$RELAY" "$RELAY_BODY_NG" "$T/gw-at-simB.toml" "$(pool "$MAX_RPS_RELAY")"
bench relay-nginx "https://127.0.0.1:$NG_PORT" "/phic/v1/$RELAY" "" relay-nginx $NGINX_PIDS "$PID_simB"
seal relay-gw "$RELAY" "$RELAY_BODY" "$T/A3300010002.toml" "$(pool "$MAX_RPS_RELAY")"
bench relay-gw "https://$GW" "/phic/v1/$RELAY" "$(cat "$T/token-A3300010002")" relay-gw "$PID_gateway" "$PID_simA"

step "(3) verifyCode, cached PHIC1 code, SM2"
call verifyCode "$T/verify.json" "$T/A3300010003.toml" >/dev/null  # fills its cache partition
a0=$(cpu_ticks "${PIDS[@]}" $NGINX_PIDS)
m0=$(busy_ticks)
TIMEFORMAT='%3U %3S'
{ time "$H" client verifyCode --body "$T/verify.json" --as "$T/A3300010003.toml" \
  --sm2-bound-secs "$BOUND_SECS" >"$T/bound.json"; } 2>"$T/bound.time"
BOUND_OTHERS=$(awk -v m="$(($(busy_ticks) - m0 - $(cpu_ticks "${PIDS[@]}" $NGINX_PIDS) + a0))" \
  -v h="$TICKS" -v d="$BOUND_SECS" '{printf "%.2f", (m - ($1 + $2) * h) / h / d}' "$T/bound.time")
BOUND=$(jq -r '.per_second' "$T/bound.json")
BOUND_THREADS=$(jq -r '.threads' "$T/bound.json")
BOUND_PER_THREAD=$(jq -r '.per_second_per_thread' "$T/bound.json")
BOUND_CORES=$(awk -v d="$BOUND_SECS" '{printf "%.2f", ($1 + $2) / d}' "$T/bound.time")
BOUND_PER_CORE=$(awk -v n="$(jq -r '.verify_plus_sign' "$T/bound.json")" '{printf "%.0f", n / ($1 + $2)}' "$T/bound.time")
say "bound: $BOUND verify+sign pairs/s on $BOUND_THREADS threads ($BOUND_PER_THREAD per thread)"
seal verify-sm2 verifyCode "$T/verify.json" "$T/A3300010003.toml" "$(pool "$MAX_RPS_SM2")"
bench verify-sm2 "https://$GW" /phic/v1/verifyCode "$(cat "$T/token-A3300010003")" verify-sm2 "$PID_gateway"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_HWM=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$PID_gateway/status")
RSS_NOW=$(awk '/^VmRSS/ {print $2, $3}' "/proc/$PID_gateway/status")
CACHE=$(curl -s "http://$GW_ADMIN/metrics" | awk '/^hutong_cache_(hits|misses)_total/ {printf "%s=%s ", $1, $2}')

# ---------------------------------------------------------------------------------------
# The report.
row() { # LABEL KEY → one table row from a wrk result
  local k=$2 req dur statuses bad sock tmo wraps nonok errors cores wcores others
  req=$(field "$k" requests)
  dur=$(field "$k" duration_us)
  statuses=$(field "$k" statuses)
  bad=$(field "$k" badcode)
  sock=$(field "$k" sockerr)
  tmo=$(field "$k" timeouts)
  wraps=$(field "$k" wraps)
  nonok=$(tr ',' '\n' <<<"$statuses" | awk -F= '$1 !~ /^2/ && $2 != "" {s += $2} END {print s + 0}')
  errors=$((nonok + bad + sock + tmo))
  cores=$(awk -v t="$(field "$k" cpu_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{printf "%.2f", t / h / (d / 1e6)}')
  wcores=$(awk -v t="$(field "$k" wrk_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{printf "%.2f", t / h / (d / 1e6)}')
  others=$(awk -v t="$(field "$k" other_ticks)" -v d="$dur" -v h="$TICKS" 'BEGIN{o = t / h / (d / 1e6); printf "%.2f", (o < 0 ? 0 : o)}')
  awk -v l="$1" -v r="$req" -v d="$dur" -v p50="$(field "$k" p50_us)" -v p99="$(field "$k" p99_us)" \
    -v e="$errors" -v s="$statuses" -v c="$cores" -v w="$wcores" -v o="$others" 'BEGIN {
      rate = r / (d / 1e6)
      printf "  %-31s %9.0f %7.2f %7.2f %6d  %5s %9.0f %5s %6s  %s\n", l, rate, p50 / 1000, p99 / 1000, e, c,
        (c > 0 ? rate / c : 0), w, o, s }'
  if [[ $RELAY == applyCodeAccess && $k == relay-* ]] && ((req > 190000)); then
    say "  warning: $k: over 190,000 grants at one simulator (it keeps 200,000): its end ran slower"
  fi
  if [[ $wraps != 0 && $k != static ]]; then
    say "  warning: $k ran out of sealed requests ($wraps wraps): raise BENCH_MAX_RPS_*"
  fi
}
rps() { awk -v r="$(field "$1" requests)" -v d="$(field "$1" duration_us)" 'BEGIN{printf "%.1f", r / (d / 1e6)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
met() { awk -v a="$1" -v b="$2" 'BEGIN{print ((a >= b) ? "yes" : "NO")}'; }

V_GW=$(rps verify-hmac)
V_NG=$(rps static)
R_GW=$(rps relay-gw)
R_NG=$(rps relay-nginx)
S_GW=$(rps verify-sm2)
R_RATIO=$(ratio "$R_GW" "$R_NG")
S_RATIO=$(ratio "$S_GW" "$BOUND")
per_core() { # KEY → req/s per core of the servers under test
  awk -v r="$(field "$1" requests)" -v t="$(field "$1" cpu_ticks)" -v h="$TICKS" 'BEGIN{printf "%.1f", (t > 0 ? r / (t / h) : 0)}'
}
V_PC=$(ratio "$(per_core verify-hmac)" "$(per_core static)")
R_PC=$(ratio "$(per_core relay-gw)" "$(per_core relay-nginx)")
S_PC=$(ratio "$(per_core verify-sm2)" "$BOUND_PER_CORE")

{
  echo
  echo "hutong gateway benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
  echo "command:  $CMDLINE   (from $ROOT, commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo "load:     $WRK_CMD https://127.0.0.1:PORT/PATH  ($WRK_VERSION; HTTP/1.1 keep-alive over TLS, loopback)"
  echo "servers:  hutong serve (HUTONG_LOG=$LOG_LEVEL, [audit] sync = \"$AUDIT_SYNC\"), $NGINX_VERSION (worker_processes auto, access_log off),"
  echo "          2 × hutong sim --national --seed 1 --population 1000 (plain HTTP), all on the same $(nproc) cores"
  echo "load avg: $LOAD_BEFORE before, $LOAD_AFTER after"
  echo
  printf "  %-31s %9s %7s %7s %6s  %5s %9s %5s %6s  %s\n" "" "req/s" "p50 ms" "p99 ms" "errors" "cores" "req/s/core" "wrk" "others" "HTTP statuses"
  echo "(1) verifyCode of a cached PHIC1 code, HMAC-SM3, TLS"
  row "hutong" verify-hmac
  row "nginx return 200 ($STATIC_BYTES B)" static
  echo "      ratio $(ratio "$V_GW" "$V_NG")× (per core ${V_PC}×)   target: hutong ≥ 20,000 req/s (nginx static ≈ 80,000 here) → $(met "$V_GW" 20000)"
  echo "(2) relay of $RELAY (uncached: the gateway caches verifyCode, and queryHealthInfo unless told not to) to hutong sim --national"
  echo "    TLS from wrk, plain HTTP to the simulator; the simulator's CPU counts in the cores column"
  row "hutong → sim A" relay-gw
  row "nginx proxy_pass → sim B" relay-nginx
  echo "      ratio ${R_RATIO}× (per core ${R_PC}×)   target: ≥ 0.80× nginx proxy_pass → $(met "$R_RATIO" 0.8)"
  echo "(3) verifyCode of a cached PHIC1 code, SM2, TLS"
  row "hutong" verify-sm2
  printf "  %-31s %9.0f %7s %7s %6s  %5s %9s %5s %6s  %s\n" "bound: 1 SM2 verify + 1 sign" "$BOUND" "-" "-" "-" "$BOUND_CORES" "$BOUND_PER_CORE" "-" "$BOUND_OTHERS" \
    "($BOUND_THREADS threads × $BOUND_PER_THREAD/s, --sm2-bound-secs $BOUND_SECS)"
  echo "      ratio ${S_RATIO}× (per core ${S_PC}×)   target: ≥ 0.80× the SM2 bound → $(met "$S_RATIO" 0.8)"
  echo
  printf "  %-30s %8s   %-22s %6s   %-4s %s\n" "summary (req/s)" "hutong" "baseline" "ratio" "met" "target"
  printf "  %-30s %8.0f   %8.0f %-13s %5s×   %-4s %s\n" "(1) verifyCode cached HMAC-SM3" "$V_GW" "$V_NG" "nginx static" \
    "$(ratio "$V_GW" "$V_NG")" "$(met "$V_GW" 20000)" "hutong ≥ 20,000 req/s (nginx static ≈ 80,000 here)"
  printf "  %-30s %8.0f   %8.0f %-13s %5s×   %-4s %s\n" "(2) relay of $RELAY" "$R_GW" "$R_NG" "nginx proxy" \
    "$R_RATIO" "$(met "$R_RATIO" 0.8)" "≥ 0.80× nginx proxy_pass"
  printf "  %-30s %8.0f   %8.0f %-13s %5s×   %-4s %s\n" "(3) verifyCode cached SM2" "$S_GW" "$BOUND" "SM2 bound" \
    "$S_RATIO" "$(met "$S_RATIO" 0.8)" "≥ 0.80× the SM2 bound"
  echo
  echo "errors: non-2xx answers + 200 answers without \"code\":\"0\" + socket errors + timeouts."
  echo "cores: CPU time of the servers under test / run time: hutong, or nginx's workers; in (2) plus the simulator;"
  echo "req/s/core: req/s per such core (less sensitive to a busy machine than req/s)."
  echo "wrk: the load generator's CPU, in cores. others: CPU the rest of the machine used meanwhile (another"
  echo "tenant's build, say), in cores, of $(nproc): the noise in these figures."
  echo "gateway after the runs: VmHWM $RSS_HWM, VmRSS $RSS_NOW; ${CACHE:-no cache metrics}"
} | tee "$T/report.txt"
