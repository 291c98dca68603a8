#!/bin/sh
# One-shot (compose service `temporal-schema`, image temporalio/admin-tools): create the
# `temporal` and `temporal_visibility` databases on Postgres and bring their schemas to the
# version this admin-tools release ships. Idempotent: `create` and `setup-schema -v 0.0` leave
# existing databases alone and `update-schema` applies only missing versions, so it runs on
# every `docker compose up` and upgrades the schema when TEMPORAL_VERSION is raised (run it
# before the new server starts, which `depends_on` guarantees).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
PORT="${DB_PORT:-5432}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$PORT" -u "$POSTGRES_USER" "$@"
}

for db in temporal temporal_visibility; do
    case "$db" in
        temporal) dir="$SCHEMA_ROOT/temporal/versioned" ;;
        *) dir="$SCHEMA_ROOT/visibility/versioned" ;;
    esac
    echo "== $db"
    sql --db "$db" create
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$dir"
done
echo "Temporal schemas ready"
