"""search documents: the embedded full-text index (unaccent, pg_trgm, weighted tsvector)

Revision ID: 0002search
Revises: 0001core
Create Date: 2026-11-22 21:45:00.000000

A derived index, like the Elasticsearch one: written only by the ``index_event`` activity and
``evently search reindex``, never joined with the core tables, so it can be dropped and rebuilt.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002search"
down_revision: str | None = "0001core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # both are "trusted" extensions: a database owner may create them without superuser
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # unaccent() is STABLE (it reads a dictionary chosen by search_path); pinning the dictionary
    # makes a wrapper that is safe to declare IMMUTABLE, so generated columns and indexes can use it
    op.execute(
        """
        CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN public.unaccent('public.unaccent'::regdictionary, $1)
        """
    )
    # English stemming with accents folded first: "Café" matches "cafe", "concerts" "concert"
    op.execute("CREATE TEXT SEARCH CONFIGURATION evently_search (COPY = pg_catalog.english)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION evently_search "
        "ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, english_stem"
    )
    op.execute(
        """
        CREATE TABLE search_documents (
            event_id uuid CONSTRAINT pk_search_documents PRIMARY KEY,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            event_type text NOT NULL,
            venue_id uuid NOT NULL,
            venue_name text NOT NULL,
            city text NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            price numeric(12, 2) NOT NULL,
            currency varchar(3) NOT NULL,
            has_seats boolean NOT NULL,
            indexed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            name_key text GENERATED ALWAYS AS (lower(f_unaccent(name))) STORED,
            venue_key text GENERATED ALWAYS AS (lower(f_unaccent(venue_name))) STORED,
            city_key text GENERATED ALWAYS AS (lower(f_unaccent(city))) STORED,
            type_key text GENERATED ALWAYS AS (lower(f_unaccent(event_type))) STORED,
            document tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('evently_search', name), 'A')
                || setweight(to_tsvector('evently_search', venue_name || ' ' || city), 'B')
                || setweight(to_tsvector('evently_search', event_type), 'C')
                || setweight(to_tsvector('evently_search', description), 'D')
            ) STORED
        )
        """
    )
    op.execute("CREATE INDEX ix_search_documents_document ON search_documents USING gin (document)")
    for key in ("name_key", "venue_key", "city_key"):
        op.execute(
            f"CREATE INDEX ix_search_documents_{key}_trgm ON search_documents "
            f"USING gin ({key} gin_trgm_ops)"
        )
    op.execute("CREATE INDEX ix_search_documents_city_key ON search_documents (city_key)")
    op.execute("CREATE INDEX ix_search_documents_type_key ON search_documents (type_key)")
    op.execute("CREATE INDEX ix_search_documents_starts_at ON search_documents (starts_at)")
    op.execute("CREATE INDEX ix_search_documents_price ON search_documents (price)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS search_documents")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS evently_search")
    op.execute("DROP FUNCTION IF EXISTS f_unaccent(text)")
    # the extensions stay: other objects may depend on them
