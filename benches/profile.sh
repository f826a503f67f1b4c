#!/usr/bin/env bash
# Instructions per request of scenario (b) of benches/bench.sh under callgrind (README,
# "Profile of the cached verify path"): verifyCode of a cached PHIC1 code, HMAC-SM3, TLS,
# with bench.sh's gateway configuration and one `hutong sim --national` as the region.
# PROFILE_SCENARIO=a profiles scenario (a) instead: every request carries a fresh PHIC1 code
# of a trust-list issuer, so the gateway checks its SM2 signature and fills the cache.
# PROFILE_SCENARIO=c0 profiles the relay of (c0): generateCode (or PROFILE_RELAY_SERVICE,
# queryHealthInfo with an authCode: the gateway issue's relay), relayed to the simulator
# (which runs outside callgrind, so only the gateway's instructions are counted).
# Instruction counts do not change with the machine's load, so they compare two commits
# where req/s cannot. The gateway runs under `valgrind --tool=callgrind`; once the cache is
# filled, two wrk runs (one thread, keep-alive TLS) send sealed requests, each once: about
# one per connection, then about N. Counters are zeroed before and dumped after each run
# (callgrind_control), and the gateway's request counter says how many it answered. Both
# runs pay the same TLS handshakes, so Ir per request = (long − short Ir) / (long − short
# requests). Then the top functions of the long run, self and inclusive, per request.
# Builds nothing unless PROFILE_BUILD=1; runs ./target/release/hutong (or $HUTONG_BIN).
#
# Usage: bash benches/profile.sh
# Knobs (environment): PROFILE_SCENARIO (b, a or c0), PROFILE_RELAY_SERVICE (generateCode or
# queryHealthInfo, for c0), PROFILE_REQUESTS (N, 2000),
# BENCH_CONNECTIONS (4), PROFILE_TOP (25),
# PROFILE_BUILD=1, HUTONG_BIN, BENCH_KEEP=1 (keep the directory, with the callgrind files).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
one_at_a_time
N=${PROFILE_REQUESTS:-2000}
CONNS=${BENCH_CONNECTIONS:-4}
TOP=${PROFILE_TOP:-25}
SCENARIO=${PROFILE_SCENARIO:-b}
[[ $SCENARIO =~ ^(a|b|c0)$ ]] || die "PROFILE_SCENARIO must be a, b or c0 (got '$SCENARIO')"
SERVICE=verifyCode
if [[ $SCENARIO == c0 ]]; then
  SERVICE=${PROFILE_RELAY_SERVICE:-generateCode}
  [[ $SERVICE =~ ^(generateCode|queryHealthInfo)$ ]] \
    || die "PROFILE_RELAY_SERVICE must be generateCode or queryHealthInfo (got '$SERVICE')"
fi
for v in N CONNS TOP; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
done
((N > 2 * CONNS)) || die "PROFILE_REQUESTS must be more than twice BENCH_CONNECTIONS"
for t in valgrind callgrind_control callgrind_annotate wrk curl jq; do
  command -v "$t" >/dev/null 2>&1 || die "$t is missing (Debian: valgrind wrk curl jq)"
done
if [[ ${PROFILE_BUILD:-0} == 1 ]]; then
  (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
fi
H=${HUTONG_BIN:-$ROOT/target/release/hutong}
[[ -x $H ]] || die "$H is missing: run cargo build --release (or set PROFILE_BUILD=1)"

T=$(mktemp -d /tmp/hutong-profile.XXXXXX)
PIDS=()
STOP_WAIT_TENTHS=100 # 10 s each to stop: valgrind writes its last dump
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Keys, the region and the gateway's configuration: benches/bench.sh's, one client.
cd "$T"
"$H" certs dev --out "$T/certs" --clients A3300010001 >/dev/null
"$H" keys gen --out "$T/gw-sign" >/dev/null
"$H" keys gen --out "$T/client-sm2" >/dev/null
GW_MAC=$(hexrand 32) GW_SM4=$(hexrand 16) CL_MAC=$(hexrand 32) CL_SM4=$(hexrand 16)
cat >"$T/sim-clients.toml" <<EOF
[[client]]
app_id = "GW0000000001"
sm2_public_key_file = "gw-sign.pub.pem"
mac_key_hex = "$GW_MAC"
sm4_key_hex = "$GW_SM4"
EOF
start sim "$H" sim --national --clients "$T/sim-clients.toml" --listen 127.0.0.1:0 --seed 1 \
  --population 1000 --region 330000 --issuer 33000001 --code-ttl-secs 3600 --keys-out "$T/sim"
SIM=$(wait_line sim 'listening on http://' 10 | sed -E 's#.*://##')
{
  # As benches/bench.sh's (c0): a relayed queryHealthInfo is not answered from the cache.
  gateway_toml 200000 interval "" "query_health_info = $([[ $SERVICE == queryHealthInfo ]] && echo false || echo true)"
  client_toml A3300010001 330106 '["verifyCode", "applyCodeAccess", "generateCode", "queryHealthInfo"]' '["HMAC-SM3"]'
  national_region_toml 330000 33000001 "$SIM" sim
  if [[ $SCENARIO == a ]]; then # benches/bench.sh's issuer that no region answers for
    printf '\n[trust]\nlist_file = "trust/trust-list.json"\nanchor_key_file = "keys/trust-anchor.pub.pem"\n'
    printf 'anchor_kid = "anchor-1"\ndev_issuer_id = "10000099"\ndev_issuer_key_file = "keys/dev-issuer.key.pem"\n'
  fi
} >"$T/hutong.toml"
start gateway env HUTONG_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$T/callgrind.out" \
  "$H" serve --config "$T/hutong.toml"
GW_LINE=$(wait_line gateway 'listening on https://' 300)
GW=$(sed -E 's#.*listening on https://([0-9.:]+).*#\1#' <<<"$GW_LINE")
ADMIN=$(sed -E 's#.*admin http://([0-9.:]+).*#\1#' <<<"$GW_LINE")
# After the start: `token issue` generates nothing, and the first start made the JWT key.
"$H" token issue --client A3300010001 --config "$T/hutong.toml" --out "$T/token" >/dev/null
profile "$T/client.toml" A3300010001 HMAC-SM3 "https://$GW" "$T/gw-sign.pub.pem" "$CL_MAC" "$CL_SM4" "$T/token"
call() { "$H" client "$1" --body "$2" --as "$T/client.toml" || die "$1 did not answer code 0"; }

# A code of the simulator's population, and its verification once: the cache is filled.
USER_JSON=$("$H" client applyCodeAccess --body - --as /dev/null --sim-user 1:1000:330000:3)
printf '{"user":%s,"authType":"FACE","authProof":"bench"}\n' "$USER_JSON" >"$T/apply.json"
USER_TOKEN=$(call applyCodeAccess "$T/apply.json" | jq -er '.bizContent.userToken')
printf '{"userToken":"%s"}\n' "$USER_TOKEN" >"$T/generate.json"
CODE=$(call generateCode "$T/generate.json" | jq -er '.bizContent.codeContent')
jq -nc --arg c "$CODE" '{codeContent: $c, verifier: {orgName: "某地铁站", deviceId: "G-01"}}' >"$T/verify.json"
call verifyCode "$T/verify.json" >/dev/null
call verifyCode "$T/verify.json" >/dev/null # a cache hit: first-use costs are paid
RELAY_BODY=$T/generate.json
if [[ $SERVICE == queryHealthInfo ]]; then # the holder's consent, as bench.sh's (c0) asks it
  AUTH_CODE=$(call applyCodeAccess "$T/apply.json" | jq -er '.bizContent.authCode')
  printf '{"user":%s,"authCode":"%s"}\n' "$USER_JSON" "$AUTH_CODE" >"$T/query.json"
  RELAY_BODY=$T/query.json
  call queryHealthInfo "$RELAY_BODY" >/dev/null
fi
if [[ $SCENARIO == a ]]; then # fresh codes: one now (first-use costs), then each once
  "$H" bench codes --key "$T/keys/dev-issuer.key.pem" --iss 10000099 --kid dev-1 \
    --count $((1 + 3 * CONNS + N)) >"$T/cold.txt"
  head -1 "$T/cold.txt" >"$T/cold-first.json"
  call verifyCode "$T/cold-first.json" >/dev/null
fi
COLD_NEXT=2 # the next unused line of cold.txt

# wrk: one thread, CONNS connections, each sealed request once. After LIMIT answers it
# stops sending and touches PROFILE_DONE, and the script ends it (wrk itself would wait out
# its -d) once the requests in flight on the other connections are answered too.
cat >"$T/profile.lua" <<'EOF'
function init(args)
  local f = assert(io.open(os.getenv("PROFILE_BODIES"), "rb"))
  data = f:read("*a")
  f:close()
  pos, answers, limit = 1, 0, tonumber(os.getenv("PROFILE_LIMIT"))
  head = "POST /phic/v1/" .. os.getenv("PROFILE_SERVICE") .. " HTTP/1.1\r\nHost: " .. os.getenv("PROFILE_HOST")
    .. "\r\nContent-Type: application/json\r\nAuthorization: Bearer " .. os.getenv("PROFILE_TOKEN")
    .. "\r\nContent-Length: "
end
function request() -- the file holds more lines than are ever sent
  local e = string.find(data, "\n", pos, true)
  local body = string.sub(data, pos, e - 1)
  pos = e + 1
  return head .. #body .. "\r\n\r\n" .. body
end
function response(status, headers, body)
  answers = answers + 1
  if status ~= 200 or not string.find(body, '"code":"0"', 1, true) then
    io.stderr:write("unexpected answer: " .. status .. " " .. string.sub(body, 1, 200) .. "\n")
  end
  if answers == limit then
    wrk.thread:stop()
    assert(io.open(os.getenv("PROFILE_DONE"), "w")):close()
  end
end
EOF
answers() { # "OK OTHER": SERVICE's answers with code 0 so far, and all others, by the gateway
  curl -s "http://$ADMIN/metrics" | awk -v ok0="service=\"$SERVICE\",code=\"0\"" '/^hutong_requests_total\{/ {
    if (index($0, ok0)) ok += $2; else other += $2 } END {print ok + 0, other + 0}'
}
# run NAME LIMIT: zero the counters, wrk until LIMIT answers, wait until the gateway is
# idle, dump. Prints "Ir requests".
run() {
  local name=$1 limit=$2 before after prev bad0 bad
  if [[ $SCENARIO == a ]]; then
    sed -n "${COLD_NEXT},$((COLD_NEXT + limit + CONNS - 1))p" "$T/cold.txt" >"$T/$name.codes"
    "$H" client verifyCode --body "$T/$name.codes" --as "$T/client.toml" --seal-lines >"$T/$name.bodies"
  elif [[ $SCENARIO == c0 ]]; then
    "$H" client "$SERVICE" --body "$RELAY_BODY" --as "$T/client.toml" --seal-only $((limit + CONNS)) \
      >"$T/$name.bodies"
  else
    "$H" client verifyCode --body "$T/verify.json" --as "$T/client.toml" --seal-only $((limit + CONNS)) \
      >"$T/$name.bodies"
  fi
  read -r before bad0 < <(answers)
  callgrind_control --zero "$PID_gateway" >/dev/null
  rm -f "$T/$name.done"
  PROFILE_SERVICE=$SERVICE PROFILE_BODIES="$T/$name.bodies" PROFILE_LIMIT=$limit PROFILE_HOST=$GW PROFILE_TOKEN=$(cat "$T/token") \
    PROFILE_DONE="$T/$name.done" wrk -t1 -c"$CONNS" -d3600s -s "$T/profile.lua" \
    "https://$GW/phic/v1/$SERVICE" >"$T/$name.wrk" 2>&1 &
  local wrk_pid=$!
  while [[ ! -e $T/$name.done ]]; do
    kill -0 "$wrk_pid" 2>/dev/null || die "wrk ended early: $(cat "$T/$name.wrk")"
    sleep 0.2
  done
  read -r after bad < <(answers)
  for _ in $(seq 100); do # the requests still in flight are answered before wrk goes
    sleep 1
    prev=$after
    read -r after bad < <(answers)
    [[ $after == "$prev" ]] && break
  done
  kill -TERM "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
  if grep -q 'unexpected answer' "$T/$name.wrk"; then
    die "an answer was not code 0: $(grep -m1 unexpected "$T/$name.wrk")"
  fi
  [[ $bad == "$bad0" ]] || die "the gateway answered some requests with another code"
  callgrind_control --dump="$name" "$PID_gateway" >/dev/null
  local f
  f=$(ls -t "$T"/callgrind.out* | head -1)
  cp "$f" "$T/$name.callgrind"
  echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$T/$name.callgrind") $((after - before))"
}
say "short run ($CONNS connections)…"
R1=$(run short "$CONNS") # an assignment: a failed run stops the script
COLD_NEXT=$((COLD_NEXT + 2 * CONNS)) # run is a subshell: the short run's codes are spent here
read -r IR1 N1 <<<"$R1"
say "long run ($N requests)…"
R2=$(run long "$N")
read -r IR2 N2 <<<"$R2"
PER=$(((IR2 - IR1) / (N2 - N1)))

# by_function FILE [--inclusive=yes]: "Ir<TAB>function" per function, summed over the
# source files callgrind splits an inlined function into (inclusive: their largest part).
# Functions that were on a stack when the counters were zeroed (thread entry points) come
# out with the whole run as their own cost: a self cost over half the total is left out.
by_function() {
  callgrind_annotate --auto=no --threshold=100 "${@:2}" "$1" | awk -v incl=$(($# > 1)) '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
    /^-+$/ { section++; next }
    section >= 5 && $1 ~ /^[0-9,]+$/ {
      c = $1; gsub(",", "", c); line = $0
      sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", line); sub(/ \[[^]]*\]$/, "", line)
      fn = substr(line, index(line, ":") + 1)
      if (incl) { if (c + 0 > ir[fn]) ir[fn] = c + 0 } else ir[fn] += c
    }
    END { for (f in ir) if (incl || ir[f] <= total / 2) printf "%d\t%s\n", ir[f], f }' | sort -rn
}
by_function "$T/long.callgrind" >"$T/self.txt"
by_function "$T/long.callgrind" --inclusive=yes >"$T/inclusive.txt"
COMMITTER=$(awk -F'\t' '$2 ~ /audit::writer::(run_committer|interval::Committer::run)$/ && $1 > c {c = $1} END {print c + 0}' "$T/inclusive.txt")
# The request's own task, inclusive: steadier than the whole process's difference, which
# also carries the committer's batches and the script's /metrics reads.
HANDLE=$(awk -F'\t' '$2 ~ /server::pipeline::handle(::\{\{closure\}\})*$/ && $1 > c {c = $1} END {print c + 0}' "$T/inclusive.txt")
top() { # FILE [FILTER]: the first TOP lines (matching FILTER), in Ir per request
  awk -F'\t' -v re="${2:-.}" -v n="$N2" -v top="$TOP" \
    '$2 ~ re && k++ < top {printf "  %9.0f  %s\n", $1 / n, substr($2, 1, 110)}' "$1"
}

echo
if [[ $SCENARIO == a ]]; then
  echo "hutong: verifyCode of unique PHIC1 codes (scenario a), HMAC-SM3, TLS, under callgrind"
elif [[ $SCENARIO == c0 ]]; then
  echo "hutong: $SERVICE relayed to hutong sim --national (scenario c0), HMAC-SM3, TLS, under callgrind"
else
  echo "hutong: verifyCode of a cached PHIC1 code, HMAC-SM3, TLS, under callgrind"
fi
echo "binary: $H ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') checked out); wrk -t1 -c$CONNS"
echo "short run: $N1 requests, $IR1 Ir; long run: $N2 requests, $IR2 Ir"
echo "Ir per request: $PER"
echo "  of which the request's task (pipeline::handle, inclusive): about $((HANDLE / N2)), the figure to"
echo "  compare builds by (the whole process also carries the committer and the /metrics reads)"
echo "  of which the audit committer thread: about $((COMMITTER / N2)) (it commits every sync_interval_ms"
echo "  whatever has come, so its share per request depends on the request rate under valgrind)"
echo
echo "top functions of the long run, Ir per request (its $N2 requests; the TLS handshakes of"
echo "its $CONNS connections included):"
echo "  self (the function's own instructions):"
top "$T/self.txt"
echo "  inclusive (with what it calls), hutong's own functions:"
top "$T/inclusive.txt" '^<?hutong::'
