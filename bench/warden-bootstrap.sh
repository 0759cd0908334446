# warden-bootstrap.sh - sourced by the bench scripts (not run by hand).
#
# warden_bootstrap CMD...: starts the Warden that CMD runs (e.g. node dist/cli/main.js) once on $WDIR/data with no listener, which
# creates the store, the keys and the bootstrap admin key (<data_dir>/admin.key), mints a service
# API key `pgbench-client` with it, and stops it. Sets CLIENT_KEY (the admin key when minting
# fails, with a warning) and BOOT_PID while the bootstrap Warden runs (for the caller's cleanup).
# Needs log() and die() from the caller.
warden_bootstrap() {
  local warden=("$@") url= admin
  mkdir -p "$WDIR/data"
  cat >"$WDIR/bootstrap.yaml" <<YAML
data_dir: $WDIR/data
log: { level: warn }
api: { host: 127.0.0.1, port: 0 }
listeners: { postgres: { enabled: false } }
YAML
  "${warden[@]}" serve --config "$WDIR/bootstrap.yaml" >"$WDIR/bootstrap.out" 2>"$WDIR/bootstrap.err" &
  BOOT_PID=$!
  for _ in $(seq 300); do
    url=$(sed -n 's/^warden: API listening on \(http[^ ]*\).*/\1/p' "$WDIR/bootstrap.err" | head -1)
    [[ -n $url ]] && break
    kill -0 "$BOOT_PID" 2>/dev/null || break
    sleep 0.2
  done
  [[ -n $url && -s $WDIR/data/admin.key ]] || {
    cat "$WDIR/bootstrap.err" "$WDIR/bootstrap.out" >&2
    die "bootstrap Warden did not come up"
  }
  admin=$(tr -d '\n' <"$WDIR/data/admin.key")
  CLIENT_KEY=$(WARDEN_URL=$url WARDEN_TOKEN=$admin "${warden[@]}" keys create --name pgbench-client --groups bench 2>"$WDIR/keys.err" | tr -d '\n') || true
  if [[ $CLIENT_KEY != wdn_* ]]; then
    log "WARN: minting a client key failed ($(cat "$WDIR/keys.err")); using the bootstrap admin key"
    CLIENT_KEY=$admin
  else
    log "minted API key pgbench-client (service) as the PostgreSQL password"
  fi
  kill -TERM "$BOOT_PID" 2>/dev/null || true
  wait "$BOOT_PID" 2>/dev/null || true
  BOOT_PID=
}
