#!/bin/sh
# One-shot (compose service `temporal-db-role`, image postgres): the Postgres role the Temporal
# server uses. Temporal gets its own login with CREATEDB and owns only its two databases, so
# its credentials cannot read Evently's data. Idempotent: runs on every `docker compose up`
# and keeps the password in step with TEMPORAL_DB_PASSWORD (rotate it there).
set -eu
: "${PGHOST:?}" "${PGUSER:?}" "${PGPASSWORD:?}" "${TEMPORAL_DB_USER:?}" "${TEMPORAL_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 -d "${PGDATABASE:-postgres}" \
    -v role="$TEMPORAL_DB_USER" -v password="$TEMPORAL_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEDB PASSWORD %L', :'role', :'password')
\gexec
SQL
echo "role $TEMPORAL_DB_USER ready"
