"""An organization's tax rules (issue 31). A change applies to bookings held after it: every
booking freezes the rates it was priced with (evently/pricing.py, ``bookings.price``)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import TaxRule
from evently.errors import TaxRuleInvalid, TaxRuleNotFound

_RATE = Decimal("0.01")


def _rate(value: Any) -> Decimal:
    rate = Decimal(str(value)).quantize(_RATE)
    if not Decimal(0) <= rate <= Decimal(100):
        raise TaxRuleInvalid("rate: a percentage between 0 and 100.")
    return rate


async def create_rule(
    session: AsyncSession, organization_id: uuid.UUID, values: dict[str, Any]
) -> TaxRule:
    rule = TaxRule(
        organization_id=organization_id,
        name=values["name"],
        rate=_rate(values["rate"]),
        price_includes_tax=bool(values.get("price_includes_tax", True)),
    )
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    return rule


async def list_rules(session: AsyncSession, organization_id: uuid.UUID) -> list[TaxRule]:
    return list(
        await session.scalars(
            select(TaxRule)
            .where(TaxRule.organization_id == organization_id)
            .order_by(TaxRule.created_at, TaxRule.id)
        )
    )


async def get_rule(
    session: AsyncSession, organization_id: uuid.UUID, rule_id: uuid.UUID
) -> TaxRule:
    rule = await session.scalar(
        select(TaxRule).where(TaxRule.id == rule_id, TaxRule.organization_id == organization_id)
    )
    if rule is None:
        raise TaxRuleNotFound()
    return rule


async def update_rule(
    session: AsyncSession, organization_id: uuid.UUID, rule_id: uuid.UUID, changes: dict[str, Any]
) -> TaxRule:
    """For future bookings only: held and confirmed bookings keep the rate they froze."""
    rule = await get_rule(session, organization_id, rule_id)
    values: dict[str, Any] = {}
    for key in ("name", "price_includes_tax"):
        if key in changes:
            if changes[key] is None:
                raise TaxRuleInvalid(f"{key}: cannot be null.")
            values[key] = changes[key]
    if "rate" in changes:
        if changes["rate"] is None:
            raise TaxRuleInvalid("rate: cannot be null.")
        values["rate"] = _rate(changes["rate"])
    if values:
        await session.execute(
            update(TaxRule).where(TaxRule.id == rule.id).values(**values, updated_at=func.now())
        )
        await session.refresh(rule)
    return rule


async def check_rule_ids(
    session: AsyncSession, organization_id: uuid.UUID, rule_ids: set[uuid.UUID]
) -> None:
    """Every id names one of the organization's rules (422 ``tax_rule_invalid`` otherwise)."""
    if not rule_ids:
        return
    found = set(
        await session.scalars(
            select(TaxRule.id).where(
                TaxRule.organization_id == organization_id, TaxRule.id.in_(rule_ids)
            )
        )
    )
    if found != rule_ids:
        raise TaxRuleInvalid("tax_rule_id: not one of this organization's tax rules.")


def check_fees(fees: list[dict[str, Any]] | None) -> set[uuid.UUID]:
    """Validate an event's fees; returns the tax rules they name."""
    named: set[uuid.UUID] = set()
    for fee in fees or []:
        if (fee.get("amount") is None) == (fee.get("percent") is None):
            raise TaxRuleInvalid("fees: give exactly one of amount and percent per fee.")
        if fee.get("tax_rule_id") is not None:
            named.add(uuid.UUID(str(fee["tax_rule_id"])))
    return named
