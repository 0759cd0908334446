#!/usr/bin/env bash
# pg-gateway.sh - Warden's PostgreSQL gateway measured beside direct, haproxy, PgBouncer and a bare
# Node relay, in one interleaved run of the shared peer benchmark (../shared/bench/pg-baseline.sh)
# with its `custom` path = Warden.
#
#   bash bench/pg-gateway.sh                                   # from the repo root, after npm run build
#   PATHS="direct pgbouncer custom" TESTS="select_simple churn" ROUNDS=3 bash bench/pg-gateway.sh
#   node bench/pg-gateway-ratios.mjs bench/results/pg-<stamp>/results.tsv   # re-print Warden's ratios
#
# What it does:
#   1. copies dist/ (+ package.json, node_modules linked) to a temp dir, so a rebuild of dist/
#      during the run cannot change or break the Warden being measured (WARDEN_SNAPSHOT=0: use dist/);
#   2. starts that Warden once on a fresh data_dir with no listener, to create the store, keys and
#      the bootstrap admin key (<data_dir>/admin.key), mints a service API key `pgbench-client`
#      with it (the PostgreSQL password every client sends; falls back to the admin key), stops it;
#   3. runs pg-baseline.sh with CUSTOM_SETUP = bench/pg-gateway-config.sh (writes warden.yaml for the
#      throwaway cluster: listener on 127.0.0.1:$LISTEN_PORT, connection $CUSTOM_DB, rules: deny
#      drop/truncate, review UPDATE/DELETE without WHERE, tokenize users.email/customers.email, a
#      row/duration limit), CUSTOM_CMD = `node dist/cli/main.js serve --config warden.yaml`;
#   4. prints Warden's ratios to PgBouncer / direct / the Node relay (bench/pg-gateway-ratios.mjs)
#      and what Warden's audit trail recorded during the run.
#
# Env (besides every pg-baseline.sh knob: ROUNDS SCALE DURATION TESTS BASE_PORT QUIET_* ...):
#   PATHS (default "direct haproxy pgbouncer node custom"), ROUNDS (default 1),
#   AUTO_INSTALL (default 1 when haproxy or pgbouncer is missing), OUTDIR (bench/results/pg-<stamp>),
#   BASELINE (../shared/bench/pg-baseline.sh), CUSTOM_DB (connection name, default bench-pg),
#   WARDEN_SNAPSHOT (1), KEEP_WARDEN_TMP=1 (keep Warden's temp dir and store),
#   WARDEN_NODE_ARGS (extra node flags for the measured Warden, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
#   WARDEN_BENCH_POOL=session (reuse server connections: compare churn with PgBouncer's).
# Runs as root like pg-baseline.sh. Stops only processes it started, by PID.
set -Euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
BASELINE=${BASELINE:-$(cd "$REPO/.." && pwd)/shared/bench/pg-baseline.sh}
NODE=${NODE:-$(command -v node || true)}

log() { printf '[%(%H:%M:%S)T] pg-gateway: %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[[ -f $BASELINE ]] || die "pg-baseline.sh not found at $BASELINE (set BASELINE)"
[[ -n $NODE ]] || die "node not found"
[[ -f $REPO/dist/cli/main.js && -f $REPO/dist/protocols/postgres/listener.js ]] ||
  die "dist/ has no PostgreSQL gateway: run npm run build first"

export PATHS=${PATHS:-"direct haproxy pgbouncer node custom"}
export ROUNDS=${ROUNDS:-1}
if [[ -z ${AUTO_INSTALL:-} ]]; then
  if command -v haproxy >/dev/null && command -v pgbouncer >/dev/null; then AUTO_INSTALL=0; else AUTO_INSTALL=1; fi
fi
export AUTO_INSTALL
STAMP=$(date +%Y%m%d-%H%M%S)
export OUTDIR=${OUTDIR:-$BENCH/results/pg-$STAMP}
export CUSTOM_DB=${CUSTOM_DB:-bench-pg}

# WARDEN_* in the caller's environment would override the bench config (env wins over the file);
# this script's own knobs (WARDEN_SNAPSHOT, WARDEN_NODE_ARGS, WARDEN_BENCH_*) are kept.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^WARDEN_' | grep -Ev '^WARDEN_(SNAPSHOT|NODE_ARGS|BENCH_)' || true)

WDIR=$(mktemp -d /tmp/warden-pgbench.XXXXXX)
chmod 700 "$WDIR"
BOOT_PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $BOOT_PID ]] && kill -0 "$BOOT_PID" 2>/dev/null; then
    kill -TERM "$BOOT_PID" 2>/dev/null || true
    wait "$BOOT_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP_WARDEN_TMP:-0} == 1 ]]; then log "kept $WDIR"; else rm -rf "$WDIR"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. snapshot of the build
if [[ ${WARDEN_SNAPSHOT:-1} == 1 ]]; then
  mkdir -p "$WDIR/app"
  cp -a "$REPO/dist" "$REPO/package.json" "$WDIR/app/" || die "cannot copy dist/"
  ln -s "$REPO/node_modules" "$WDIR/app/node_modules"
  APP=$WDIR/app
else
  APP=$REPO
fi
WARDEN=("$NODE" "$APP/dist/cli/main.js")
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]] && REV="$REV+dirty-src"
log "Warden $("${WARDEN[@]}" --version 2>/dev/null || echo '?') at $REV, from $APP"

# ---------------------------------------------------------------- 2. bootstrap store and key
# shellcheck source=bench/warden-bootstrap.sh
source "$BENCH/warden-bootstrap.sh"
warden_bootstrap "${WARDEN[@]}"

# ---------------------------------------------------------------- 3. the run
export CUSTOM_PASSWORD=$CLIENT_KEY
export WARDEN_BENCH_DIR=$WDIR WARDEN_BENCH_CONNECTION=$CUSTOM_DB
export CUSTOM_SETUP="bash $BENCH/pg-gateway-config.sh"
export CUSTOM_CMD="$NODE ${WARDEN_NODE_ARGS:-} $APP/dist/cli/main.js serve --config $WDIR/warden.yaml"
log "PATHS=\"$PATHS\" ROUNDS=$ROUNDS TESTS=\"${TESTS:-all}\" OUTDIR=$OUTDIR"
log "running $BASELINE"
bash "$BASELINE"
RC=$?

# ---------------------------------------------------------------- 4. Warden's view of it
[[ -f $WDIR/warden.yaml ]] && cp -f "$WDIR/warden.yaml" "$OUTDIR/warden.yaml" 2>/dev/null
{
  echo "# warden $REV, pg-gateway.sh RC=$RC"
  if [[ -f $OUTDIR/results.tsv ]]; then echo; "$NODE" "$BENCH/pg-gateway-ratios.mjs" "$OUTDIR/results.tsv"; fi
  if [[ -f $WDIR/data/warden.db ]]; then
    echo
    echo "Warden audit trail after the run (type: records):"
    (cd "$REPO" && "$NODE" -e '
      const Database = require("better-sqlite3");
      const db = new Database(process.argv[1], { readonly: true });
      for (const r of db.prepare("select type, count(*) n from audit_log group by type order by n desc").all())
        console.log(`  ${r.type}: ${r.n}`);
      const s = db.prepare("select count(*) n from sessions").get();
      const c = db.prepare("select count(*) n from audit_checkpoints").get();
      console.log(`  sessions: ${s.n}, signed checkpoints: ${c.n}`);
      for (const r of db.prepare("select payload_json from audit_log where type in (?, ?) order by seq limit 5").all("command.denied", "command.held")) {
        const p = JSON.parse(r.payload_json); console.log(`  refused: ${p.command} -> ${p.message ?? p.decided_by}`);
      }' "$WDIR/data/warden.db") || echo "  (could not read the store)"
  fi
} | tee "$OUTDIR/warden-summary.txt"
exit $RC
