"""the door belongs to the organization: platform door accounts become door members

Revision ID: 0010doorscope
Revises: 0009webhooktargets
Create Date: 2026-12-05 09:00:00.000000

Since issue 30 ``POST /api/v1/checkin/redeem`` admits a ticket only for a ``door``, ``owner``
or ``manager`` member of the organization whose event it is; the platform ``door`` role alone
admits nothing. So that the scanners of an install from before organizations keep working for
the events they always scanned (all of which belong to the default organization, migration
0006), every platform ``door`` account that is not yet a member of the default organization
becomes its ``door`` member here (``added_by`` NULL: nobody added it through the API, which
always records who did). Accounts made later need a membership (docs/door.md).

Downgrade removes exactly those memberships (default organization, role ``door``, a platform
``door`` account, ``added_by`` NULL).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010doorscope"
down_revision: str | None = "0009webhooktargets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ORGANIZATION_ID = "00000000-0000-4000-8000-000000000001"


def upgrade() -> None:
    op.execute(
        f"""
        INSERT INTO organization_members (organization_id, user_id, role, added_by)
        SELECT '{DEFAULT_ORGANIZATION_ID}', u.id, 'door', NULL
        FROM users u
        WHERE u.role = 'door'
          AND EXISTS (SELECT 1 FROM organizations WHERE id = '{DEFAULT_ORGANIZATION_ID}')
        ON CONFLICT (organization_id, user_id) DO NOTHING
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DELETE FROM organization_members m USING users u
        WHERE m.user_id = u.id AND u.role = 'door' AND m.role = 'door'
          AND m.added_by IS NULL AND m.organization_id = '{DEFAULT_ORGANIZATION_ID}'
        """
    )
