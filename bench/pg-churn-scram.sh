#!/usr/bin/env bash
# pg-churn-scram.sh - connection churn (`pgbench -S -C`) against a target that asks for
# SCRAM-SHA-256, PostgreSQL's default password method since version 14: direct, haproxy (the TCP
# relay a user would pick) and Warden, interleaved round by round on the same cluster.
#
# The shared peer benchmark (pg-gateway.sh) runs its cluster with trust auth. Here every path
# logs in with a password: through direct and haproxy pgbench's libpq runs the SCRAM exchange
# (PBKDF2, 4,096 rounds by default) on every connection; through Warden the client presents its
# API key and Warden logs in to the target with the sealed password, its SCRAM key derived once.
# Warden runs with the rule set and recording of pg-gateway-config.sh.
#
#   bash scripts/pg-test-auth.sh      # once, as CI does: role warden_scram and its pg_hba line
#   npm run build && bash bench/pg-churn-scram.sh
#
# Env: ROUNDS (3), DURATION (10 s per run), CLIENTS (4), THREADS (2), PORT_BASE (16540: haproxy,
# +1 Warden), PG_ROLE / PG_ROLE_PASSWORD (warden_scram / scram-test-pw, as pg-test-auth.sh sets them),
# OUTDIR (bench/results/churn-scram-<stamp>). Needs a local PostgreSQL at 127.0.0.1:5432 where
# `postgres` logs in without a password (trust, as CI's), haproxy, pgbench. Stops only what it started.
set -Euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
NODE=${NODE:-$(command -v node || true)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
PORT_BASE=${PORT_BASE:-16540}
GATEWAY_PORT=$((PORT_BASE + 1))
PG_ROLE=${PG_ROLE:-warden_scram}
PG_ROLE_PASSWORD=${PG_ROLE_PASSWORD:-scram-test-pw}
DB=warden_churn_scram
OUTDIR=${OUTDIR:-$BENCH/results/churn-scram-$(date +%Y%m%d-%H%M%S)}

log() { printf '[%(%H:%M:%S)T] churn-scram: %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
ADMIN=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres)

[[ -n $NODE && -f $REPO/dist/cli/main.js ]] || die "run npm run build first (and have node on PATH)"
command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install -y haproxy)"
command -v pgbench >/dev/null || die "pgbench is not installed"
method=$("${ADMIN[@]}" -d postgres -Atc "select auth_method from pg_hba_file_rules where '$PG_ROLE' = any(user_name) and type = 'host' order by line_number limit 1") ||
  die "cannot reach PostgreSQL at 127.0.0.1:5432 as postgres"
[[ $method == scram-sha-256 ]] ||
  die "pg_hba.conf has no scram-sha-256 line for $PG_ROLE (found '${method:-none}'): run bash scripts/pg-test-auth.sh"
PGPASSWORD=$PG_ROLE_PASSWORD psql -X -q -h 127.0.0.1 -p 5432 -U "$PG_ROLE" -d postgres -c 'select 1' >/dev/null ||
  die "$PG_ROLE cannot log in with its password: run bash scripts/pg-test-auth.sh"

# WARDEN_* in the caller's environment would override the bench config (env wins over the file).
while read -r v; do unset "$v"; done < <(compgen -e | grep '^WARDEN_' || true)

mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
WDIR=$(mktemp -d /tmp/warden-churn-scram.XXXXXX) || die "mktemp failed"
chmod 700 "$WDIR"
BOOT_PID= HAPROXY_PID= WARDEN_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in $BOOT_PID $HAPROXY_PID $WARDEN_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "${ADMIN[@]}" -d postgres -c "drop database if exists $DB" 2>/dev/null || true
  rm -rf "$WDIR"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "database $DB (pgbench scale 1), readable by $PG_ROLE"
"${ADMIN[@]}" -d postgres -c "drop database if exists $DB" -c "create database $DB" || die "cannot create $DB"
pgbench -q -i -s 1 -h 127.0.0.1 -p 5432 -U postgres "$DB" >"$WDIR/init.log" 2>&1 || die "pgbench -i failed"
"${ADMIN[@]}" -d "$DB" -c "grant select on all tables in schema public to $PG_ROLE" || die "grant failed"

cat >"$WDIR/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen pg
  bind 127.0.0.1:$PORT_BASE
  server pg 127.0.0.1:5432
CFG
haproxy -f "$WDIR/haproxy.cfg" -db >"$WDIR/haproxy.log" 2>&1 &
HAPROXY_PID=$!

# shellcheck source=bench/warden-bootstrap.sh
source "$BENCH/warden-bootstrap.sh"
warden_bootstrap "$NODE" "$REPO/dist/cli/main.js"
WARDEN_BENCH_DIR=$WDIR WARDEN_BENCH_CONNECTION=churn WARDEN_BENCH_PASSWORD_ENV=CHURN_TARGET_PASSWORD \
  PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=$PG_ROLE PG_DB=$DB LISTEN_PORT=$GATEWAY_PORT SCALE=1 \
  bash "$BENCH/pg-gateway-config.sh" >/dev/null || die "cannot write warden.yaml"
CHURN_TARGET_PASSWORD=$PG_ROLE_PASSWORD "$NODE" --max-semi-space-size=4 "$REPO/dist/cli/main.js" serve \
  --config "$WDIR/warden.yaml" >"$WDIR/warden.out" 2>"$WDIR/warden.err" &
WARDEN_PID=$!
for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $GATEWAY_PORT && break; sleep 0.2; done
pg_isready -q -h 127.0.0.1 -p $GATEWAY_PORT || { cat "$WDIR/warden.err" >&2; die "Warden did not come up"; }

# path → port user password database
declare -A PORT=([direct]=5432 [haproxy]=$PORT_BASE [warden]=$GATEWAY_PORT)
declare -A PASSWORD=([direct]=$PG_ROLE_PASSWORD [haproxy]=$PG_ROLE_PASSWORD [warden]=$CLIENT_KEY)
declare -A DB_OF=([direct]=$DB [haproxy]=$DB [warden]=churn)
run() { # path seconds → "tps connection_ms"
  local p=$1 out
  out=$(PGPASSWORD=${PASSWORD[$p]} pgbench -n -S -C -M simple -c "$CLIENTS" -j "$THREADS" -T "$2" \
    -h 127.0.0.1 -p "${PORT[$p]}" -U "$PG_ROLE" "${DB_OF[$p]}" 2>&1) || { echo "$out" >&2; return 1; }
  printf '%s %s\n' "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")" \
    "$(sed -n 's/^average connection time = \([0-9.]*\) ms/\1/p' <<<"$out")"
}

log "warm-up (3 s per path)"
for p in direct haproxy warden; do run "$p" 3 >/dev/null || die "$p does not work"; done
printf 'round\tpath\tconn_per_s\tconnection_ms\n' >"$OUTDIR/results.tsv"
for r in $(seq "$ROUNDS"); do
  for p in direct haproxy warden; do
    read -r tps ms < <(run "$p" "$DURATION") || die "$p failed in round $r"
    [[ -n $tps && -n $ms ]] || die "$p: no tps or connection time in pgbench's output (round $r)"
    log "round $r $p: $tps conn/s, connection $ms ms"
    printf '%s\t%s\t%s\t%s\n' "$r" "$p" "$tps" "$ms" >>"$OUTDIR/results.tsv"
  done
done
"$NODE" -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").slice(1).map((l) => l.split("\t"));
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const of = (p) => median(rows.filter((r) => r[1] === p).map((r) => Number(r[2])));
  const ms = (p) => median(rows.filter((r) => r[1] === p).map((r) => Number(r[3])));
  console.log(`pgbench -S -C -c ${process.argv[2]} against a SCRAM-SHA-256 target, medians of ${process.argv[3]} rounds:`);
  for (const p of ["direct", "haproxy", "warden"]) console.log(`  ${p.padEnd(8)} ${of(p).toFixed(0).padStart(6)} conn/s, connection ${ms(p).toFixed(2)} ms`);
  console.log(`  Warden/haproxy ${(of("warden") / of("haproxy")).toFixed(2)}, Warden/direct ${(of("warden") / of("direct")).toFixed(2)}`);
  console.log("  (pgbench runs SCRAM, PBKDF2 included, on every direct and haproxy connection; to Warden it sends its API key in clear over loopback)");
' "$OUTDIR/results.tsv" "$CLIENTS" "$ROUNDS" | tee "$OUTDIR/summary.txt"
