"""money: tax rules, fees, the frozen price breakdown, invoices and credit notes (issue 31)

Revision ID: 0017money
Revises: 0017banktransfer
Create Date: 2026-12-05 12:00:00.000000

- ``tax_rules``: an organization's rates (name, rate in percent, whether prices include it);
  a ticket type names one (``ticket_types.tax_rule_id``) or none;
- ``events.fees``: the event's fees (JSON list), NULL when none;
- ``bookings.price``: the frozen inputs of the booking's breakdown (evently/pricing.py), NULL
  when the booking has no tax rule and no fee; ``bookings.billing``: the buyer's optional
  billing name, address and VAT id;
- ``organizations``: legal name, address, VAT id and invoice prefix;
- ``invoice_counters``: one row per (organization, year), ``n`` bumped by the confirmation's
  own statement (gap-free: a rolled-back confirmation rolls its number back; never a sequence);
- ``invoices``: invoices and credit notes, numbered ``{prefix}-{year}-{n}``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017money"
down_revision: str | None = "0017banktransfer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in (
        """
        CREATE TABLE tax_rules (
            id uuid NOT NULL,
            organization_id uuid NOT NULL,
            name varchar(100) NOT NULL,
            rate numeric(5, 2) NOT NULL,
            price_includes_tax boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_tax_rules PRIMARY KEY (id),
            CONSTRAINT fk_tax_rules_organization_id_organizations
                FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT ck_tax_rules_rate_range CHECK (rate >= 0 AND rate <= 100)
        )
        """,
        """
        CREATE INDEX ix_tax_rules_organization_id ON tax_rules (organization_id, created_at)
        """,
        """
        ALTER TABLE ticket_types ADD COLUMN tax_rule_id uuid
            CONSTRAINT fk_ticket_types_tax_rule_id_tax_rules REFERENCES tax_rules (id)
        """,
        """
        ALTER TABLE events ADD COLUMN fees jsonb
        """,
        """
        ALTER TABLE bookings ADD COLUMN price jsonb
        """,
        """
        ALTER TABLE bookings ADD COLUMN billing jsonb
        """,
        """
        ALTER TABLE organizations ADD COLUMN legal_name varchar(200) NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE organizations ADD COLUMN legal_address varchar(400) NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE organizations ADD COLUMN vat_id varchar(40) NOT NULL DEFAULT ''
        """,
        """
        ALTER TABLE organizations ADD COLUMN invoice_prefix varchar(20) NOT NULL DEFAULT 'INV'
        """,
        """
        CREATE TABLE invoice_counters (
            organization_id uuid NOT NULL,
            year integer NOT NULL,
            n integer NOT NULL,
            CONSTRAINT pk_invoice_counters PRIMARY KEY (organization_id, year),
            CONSTRAINT fk_invoice_counters_organization_id_organizations
                FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE,
            CONSTRAINT ck_invoice_counters_n_positive CHECK (n > 0)
        )
        """,
        """
        CREATE TABLE invoices (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            organization_id uuid NOT NULL,
            booking_id uuid NOT NULL,
            kind varchar(16) NOT NULL,
            source varchar(32) NOT NULL,
            refers_to uuid,
            year integer NOT NULL,
            n integer NOT NULL,
            number varchar(60) NOT NULL,
            total numeric(12, 2) NOT NULL,
            currency varchar(3) NOT NULL,
            price jsonb,
            seats jsonb,
            seller jsonb NOT NULL DEFAULT '{}',
            buyer jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_invoices PRIMARY KEY (id),
            CONSTRAINT fk_invoices_organization_id_organizations
                FOREIGN KEY (organization_id) REFERENCES organizations (id),
            CONSTRAINT fk_invoices_booking_id_bookings
                FOREIGN KEY (booking_id) REFERENCES bookings (id),
            CONSTRAINT fk_invoices_refers_to_invoices
                FOREIGN KEY (refers_to) REFERENCES invoices (id),
            CONSTRAINT ck_invoices_kind CHECK (kind IN ('invoice', 'credit_note')),
            CONSTRAINT ck_invoices_total_nonnegative CHECK (total >= 0),
            CONSTRAINT uq_invoices_organization_year_n UNIQUE (organization_id, year, n),
            CONSTRAINT uq_invoices_booking_source UNIQUE (booking_id, source)
        )
        """,
        """
        CREATE INDEX ix_invoices_organization_created ON invoices (organization_id, created_at, id)
        """,
    ):
        op.execute(statement)


def downgrade() -> None:
    for statement in (
        """
        DROP TABLE invoices
        """,
        """
        DROP TABLE invoice_counters
        """,
        """
        ALTER TABLE organizations DROP COLUMN invoice_prefix
        """,
        """
        ALTER TABLE organizations DROP COLUMN vat_id
        """,
        """
        ALTER TABLE organizations DROP COLUMN legal_address
        """,
        """
        ALTER TABLE organizations DROP COLUMN legal_name
        """,
        """
        ALTER TABLE bookings DROP COLUMN billing
        """,
        """
        ALTER TABLE bookings DROP COLUMN price
        """,
        """
        ALTER TABLE events DROP COLUMN fees
        """,
        """
        ALTER TABLE ticket_types DROP COLUMN tax_rule_id
        """,
        """
        DROP TABLE tax_rules
        """,
    ):
        op.execute(statement)
