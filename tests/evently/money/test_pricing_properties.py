"""The price breakdown (evently/pricing.py, issue 31), property-based: for random prices, rates,
fees, discounts and quantities, total = the sum of its lines, and any sequence of partial
refunds gives back exactly what was charged (never more per tax, fee or total, no cent created
or lost)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from evently.pricing import (
    Breakdown,
    FeeIn,
    LineIn,
    PriceInputs,
    TaxRate,
    breakdown,
    round_money,
)

cents = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))
rates = st.sampled_from([Decimal("0"), Decimal("5.5"), Decimal("7"), Decimal("19"), Decimal("20")])
taxes = st.one_of(
    st.none(),
    st.builds(TaxRate, name=st.sampled_from(["VAT", "GST"]), rate=rates, included=st.booleans()),
)


@st.composite
def lines(draw: st.DrawFn, key: int) -> LineIn:
    q = draw(st.integers(min_value=1, max_value=8))
    unit = draw(cents)
    pct = draw(st.sampled_from([None, Decimal(10), Decimal(33), Decimal(100)]))
    if pct is None:
        off = draw(st.integers(min_value=0, max_value=int(unit * 100))) * q
        discount = Decimal(off).scaleb(-2) if draw(st.booleans()) else Decimal(0)
    else:  # the reserve statement's percent discount (Postgres round: half away from zero)
        discount = round_money(unit * q * pct / 100, "EUR")
    return LineIn(f"t{key}", f"type {key}", q, unit, discount, draw(taxes))


fees = st.builds(
    FeeIn,
    name=st.sampled_from(["service", "booking"]),
    amount=st.one_of(st.none(), cents.map(lambda c: c / 10)),
    percent=st.none(),
    per=st.sampled_from(["ticket", "booking"]),
    passed_on=st.booleans(),
    tax=taxes,
).map(
    lambda f: (
        f
        if f.amount is not None
        else FeeIn(f.name, None, Decimal("2.5"), "booking", f.passed_on, f.tax)
    )
)


@st.composite
def bookings(draw: st.DrawFn) -> PriceInputs:
    n = draw(st.integers(min_value=1, max_value=3))
    return PriceInputs(
        currency="EUR",
        lines=tuple(draw(lines(i)) for i in range(n)),
        fees=tuple(draw(st.lists(fees, max_size=3))),
    )


def _sum_lines(b: Breakdown) -> Decimal:
    total = Decimal(0)
    for line in b.lines:
        if not line.passed_on:
            continue
        total += line.amount + (line.tax if not line.tax_included else 0)
    return total


@settings(max_examples=300, deadline=None)
@given(bookings())
def test_total_is_the_sum_of_its_lines(inputs: PriceInputs) -> None:
    b = breakdown(inputs)
    assert b.total == b.subtotal - b.discount + b.fees + sum(
        (t.amount for t in b.taxes if not t.included), Decimal(0)
    )
    assert b.total == _sum_lines(b)
    assert b.total >= 0
    assert all(t.amount >= 0 for t in b.taxes)
    for amount in (b.subtotal, b.discount, b.fees, b.total, *(t.amount for t in b.taxes)):
        assert amount == amount.quantize(Decimal("0.01"))


@settings(max_examples=300, deadline=None)
@given(bookings(), st.data())
def test_partial_refunds_give_back_exactly_what_was_charged(
    inputs: PriceInputs, data: st.DataObject
) -> None:
    charged = breakdown(inputs)
    left = inputs.full()
    refunds: list[Breakdown] = []
    while sum(left.values()) > 0:
        key = data.draw(st.sampled_from([k for k, n in left.items() if n > 0]))
        k = data.draw(st.integers(min_value=1, max_value=left[key]))
        before = breakdown(inputs, left)
        left = {**left, key: left[key] - k}
        part = before.minus(breakdown(inputs, left))
        # never negative: a refund gives back, it never takes
        assert part.total >= 0
        assert part.fees >= 0
        assert all(t.amount >= 0 for t in part.taxes)
        refunds.append(part)
        given_back = sum((r.total for r in refunds), Decimal(0))
        assert given_back <= charged.total
        for t in charged.taxes:
            back = sum(
                (
                    x.amount
                    for r in refunds
                    for x in r.taxes
                    if (x.name, x.rate, x.included) == (t.name, t.rate, t.included)
                ),
                Decimal(0),
            )
            assert back <= t.amount
        assert sum((r.fees for r in refunds), Decimal(0)) <= charged.fees
    # every seat refunded: exactly the charge, per component, to the cent
    assert sum((r.total for r in refunds), Decimal(0)) == charged.total
    assert sum((r.fees for r in refunds), Decimal(0)) == charged.fees
    assert sum((r.discount for r in refunds), Decimal(0)) == charged.discount
    for t in charged.taxes:
        back = sum(
            (
                x.amount
                for r in refunds
                for x in r.taxes
                if (x.name, x.rate, x.included) == (t.name, t.rate, t.included)
            ),
            Decimal(0),
        )
        assert back == t.amount


def test_the_issue_case_by_hand() -> None:
    """2 x 19.00 gross at 19% VAT included, 1.50 fee per ticket taxed at 19% (included),
    10% promo code."""
    vat = TaxRate("VAT", Decimal("19.00"), True)
    inputs = PriceInputs(
        "EUR",
        (LineIn("t", "Standard", 2, Decimal("19.00"), Decimal("3.80"), vat),),
        (FeeIn("Service fee", Decimal("1.50"), None, "ticket", True, vat),),
    )
    b = breakdown(inputs)
    assert b.answer() == {
        "subtotal": "38.00",
        "discount": "3.80",
        "fees": "3.00",
        # tickets 34.20 x 19/119 = 5.4605 -> 5.46; fee 3.00 x 19/119 = 0.4790 -> 0.48
        "taxes": [{"name": "VAT", "rate": "19.00", "amount": "5.94", "included": True}],
        "total": "37.20",
        "currency": "EUR",
    }
    one = b.minus(breakdown(inputs, {"t": 1}))
    # one seat back: 19.00 - 1.90 + 1.50 = 18.60; tax 17.10 -> 2.73, fee 1.50 -> 0.24
    assert (one.total, one.fees, one.taxes[0].amount) == (
        Decimal("18.60"),
        Decimal("1.50"),
        Decimal("2.97"),
    )
