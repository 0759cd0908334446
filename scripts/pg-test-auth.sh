#!/usr/bin/env bash
# Prepares the local PostgreSQL (127.0.0.1:5432, trust for `postgres`) for the target-side auth tests:
# password roles for SCRAM, MD5 and cleartext, their pg_hba lines, and TLS with a throwaway test CA.
# Idempotent; needs root (or sudo) for the config files. Test-only: never point it at a real server.
set -Eeuo pipefail

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -U postgres -h 127.0.0.1 -p 5432 -d postgres)
CA_PEM=/var/lib/postgresql/warden-test-ca.pem
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
log() { printf '[pg-test-auth] %s\n' "$*"; }

hba=$("${PSQL[@]}" -Atc 'show hba_file')
conf_dir=$(dirname "$hba")
data_dir=$("${PSQL[@]}" -Atc 'show data_directory')

# pg_hba is matched top-down, so the password lines must come before the catch-all trust line.
block=$'host all warden_scram 127.0.0.1/32 scram-sha-256\nhost all warden_md5 127.0.0.1/32 md5\nhost all warden_clear 127.0.0.1/32 password'
if [[ "$(as_root head -n 3 "$hba")" != "$block" ]]; then
  log "adding password lines to $hba"
  as_root sed -i -E '/^host all warden_(scram|md5|clear) /d' "$hba"
  tmp=$(mktemp)
  { printf '%s\n' "$block"; as_root cat "$hba"; } >"$tmp"
  as_root cp "$tmp" "$hba" # cp keeps the file's owner and mode
  rm -f "$tmp"
fi

# Each role's password is reset on every run, stored with the hash its auth method needs
# (md5 auth can only check an md5-stored password).
"${PSQL[@]}" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'warden_scram') THEN CREATE ROLE warden_scram LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'warden_md5') THEN CREATE ROLE warden_md5 LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'warden_clear') THEN CREATE ROLE warden_clear LOGIN; END IF;
END $$;
SET password_encryption = 'scram-sha-256';
ALTER ROLE warden_scram LOGIN PASSWORD 'scram-test-pw';
ALTER ROLE warden_clear LOGIN PASSWORD 'clear-test-pw';
SET password_encryption = 'md5';
ALTER ROLE warden_md5 LOGIN PASSWORD 'md5-test-pw';
SQL

# TLS: a test CA and a server certificate for localhost / 127.0.0.1, kept in the cluster's config dir.
crt="$conf_dir/warden-test-server.crt"
key="$conf_dir/warden-test-server.key"
if ! as_root test -s "$crt" || ! as_root test -s "$key" || ! as_root test -s "$CA_PEM"; then
  log "issuing a test CA and server certificate"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj '/CN=Warden test CA' \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -sha256 -nodes -subj '/CN=localhost' \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$work/ext"
  openssl x509 -req -sha256 -days 3650 -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -extfile "$work/ext" -out "$work/server.crt" 2>/dev/null
  as_root install -o postgres -g postgres -m 0644 "$work/server.crt" "$crt"
  as_root install -o postgres -g postgres -m 0600 "$work/server.key" "$key"
  as_root install -D -m 0644 "$work/ca.pem" "$CA_PEM"
fi

"${PSQL[@]}" -c "ALTER SYSTEM SET ssl_cert_file = '$crt'" -c "ALTER SYSTEM SET ssl_key_file = '$key'" \
  -c "ALTER SYSTEM SET ssl = on" -c 'SELECT pg_reload_conf()' >/dev/null

# The reload is asynchronous and a bad certificate only shows in the server log: prove both paths work.
for _ in $(seq 50); do
  if PGPASSWORD=scram-test-pw psql -X -Atc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' \
    "host=127.0.0.1 port=5432 dbname=postgres user=warden_scram sslmode=verify-full sslrootcert=$CA_PEM" \
    2>/dev/null | grep -qx t; then
    log "ready: roles warden_scram/warden_md5/warden_clear, TLS with CA $CA_PEM (data dir $data_dir)"
    exit 0
  fi
  sleep 0.1
done
log "PostgreSQL did not accept a verified TLS + SCRAM login after the reload; see its log"
exit 1
