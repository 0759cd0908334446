#!/usr/bin/env bash
# pg-gateway-config.sh - CUSTOM_SETUP for pg-baseline.sh (run by bench/pg-gateway.sh, not by hand).
#
# Writes $WARDEN_BENCH_DIR/warden.yaml: Warden's PostgreSQL listener on 127.0.0.1:$LISTEN_PORT and one
# connection ($WARDEN_BENCH_CONNECTION) to the throwaway cluster pg-baseline.sh started
# ($PG_HOST:$PG_PORT, database $PG_DB, user $PG_USER, trust auth so no target password), with a
# realistic rule set that every statement is evaluated against. pg-baseline.sh exports
# PG_HOST PG_PORT PG_USER PG_DB LISTEN_PORT before running this.
#
# Recording is on, as in production: every statement is a session event (text, masked parameters,
# decision, timing, rows, bytes, the first recording.result_rows rows masked) and its decision
# (command.allowed / command.denied / command.held) an event in the hash-chained audit trail, with
# signed checkpoints, all in the SQLite store under data_dir. The settings below are the defaults,
# written out so the run is explicit. WARDEN_BENCH_POOL=session turns on server connection reuse
# (pool: session) for the connection, to compare churn with PgBouncer's. WARDEN_BENCH_PASSWORD_ENV
# names the environment variable Warden reads the target password from (pg-churn-scram.sh), for a
# target that is not on trust.
set -euo pipefail

: "${WARDEN_BENCH_DIR:?}" "${WARDEN_BENCH_CONNECTION:?}"
: "${PG_HOST:?}" "${PG_PORT:?}" "${PG_USER:?}" "${PG_DB:?}" "${LISTEN_PORT:?}"

# Generous limit (5x the rows of pgbench_accounts at this scale) so that a Warden which enforces
# limits still lets select_all through: the rule is there to be evaluated, not to cut the test.
SCALE_ROWS=$(( ${SCALE:-10} * 100000 ))
LIMIT_ROWS=${WARDEN_BENCH_LIMIT_ROWS:-$(( SCALE_ROWS * 5 ))}

cat >"$WARDEN_BENCH_DIR/warden.yaml" <<EOF
# Written by bench/pg-gateway-config.sh for pg-baseline.sh (custom path = Warden).
data_dir: $WARDEN_BENCH_DIR/data
log: { level: ${WARDEN_BENCH_LOG_LEVEL:-warn} }
api: { host: 127.0.0.1, port: 0 }
listeners:
  postgres: { host: $PG_HOST, port: $LISTEN_PORT }
connections:
  - name: $WARDEN_BENCH_CONNECTION
    protocol: postgres
    target: { host: $PG_HOST, port: $PG_PORT, database: $PG_DB, tls: disable }
    credentials: { user: $PG_USER$([[ -n ${WARDEN_BENCH_PASSWORD_ENV:-} ]] && echo ", password: { env: $WARDEN_BENCH_PASSWORD_ENV }") }
    tags: [bench, pii]
    pool: ${WARDEN_BENCH_POOL:-none}
    description: throwaway cluster started by pg-baseline.sh
policy:
  default: allow
  rules:
    - name: no-drop-truncate
      when: { sql: { statements: [drop, truncate] } }
      effect: deny
      message: Dropping or truncating tables needs a change request.
    - name: review-unbounded-writes
      when: { sql: { statements: [update, delete], where: absent } }
      effect: review
      review: { approvers: [dba], approvals: 1, hold: 5m }
    # Table-qualified columns: a bare "*.email" glob makes Warden refuse COPY (select * ...) TO
    # STDOUT of any table (it cannot tell whether * covers an email column), which is the
    # copy_out test itself. Naming the tables that hold e-mail addresses is also what a real
    # deployment would write.
    - name: mask-email
      match: { tags: [pii] }
      effect: mask
      mask: { columns: [users.email, customers.email], style: tokenize }
    - name: limit-results
      effect: limit
      limit: { rows: $LIMIT_ROWS, duration: 15m }
audit: { checkpoint_every: 1000, checkpoint_interval: 60s }
recording: { result_rows: 100 }
EOF
echo "wrote $WARDEN_BENCH_DIR/warden.yaml"
cat "$WARDEN_BENCH_DIR/warden.yaml"
