#!/bin/sh
# One-shot (compose service `temporal-setup`, image temporalio/admin-tools), after the server
# is healthy and before any Evently service starts: the namespace, and the custom search
# attributes the booking workflows upsert. A workflow that upserts an attribute the server
# does not know fails its task and retries forever, so this must finish first.
# Idempotent: existing namespace and attributes are kept; an attribute registered with
# another type fails the run (visible in `docker compose logs temporal-setup`).
set -eu
: "${TEMPORAL_ADDRESS:?}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"
ATTRIBUTES="${EVENTLY_SEARCH_ATTRIBUTES:-EventId UserId BookingStatus OrganizationId}"

# retry TRIES COMMAND...: a new namespace reaches the server's namespace cache only after its
# refresh (seconds), and the server answers health checks before it serves every call
retry() {
    tries="$1"
    shift
    n=1
    until "$@"; do
        if [ "$n" -ge "$tries" ]; then
            echo "gave up after $n tries: $*" >&2
            return 1
        fi
        n=$((n + 1))
        sleep 2
    done
}

retry 60 temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null

if temporal operator namespace describe -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    temporal operator namespace create -n "$NAMESPACE" --retention "$RETENTION" \
        --address "$TEMPORAL_ADDRESS"
fi

list_attributes() {
    temporal operator search-attribute list -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" \
        >"$listing" 2>&1
}
listing="$(mktemp)"
trap 'rm -f "$listing"' EXIT
retry 30 list_attributes || { cat "$listing" >&2; exit 1; }

for name in $ATTRIBUTES; do
    if grep -Eq "^[[:space:]]*$name[[:space:]]+Keyword[[:space:]]*$" "$listing"; then
        echo "search attribute $name (Keyword) exists"
        continue
    fi
    temporal operator search-attribute create -n "$NAMESPACE" --name "$name" --type Keyword \
        --address "$TEMPORAL_ADDRESS"
done
echo "namespace $NAMESPACE and search attributes ready"
