"""One price breakdown (issue 31): subtotal, discount, fees, taxes and total of a booking, computed
in one place, with ``Decimal`` and one rounding rule.

Rounding rule: **per line, half-up to the currency's minor unit**. A line is one ticket type of
the booking (its seats at their frozen unit price, less its share of the promo code's discount)
or one fee. Each line's tax is computed from the line's amount and rounded on its own; the taxes
of the booking are the sums of its lines' taxes per rule (name, rate, included or added).

- A tax rule whose ``price_includes_tax`` is true means the line's amount already contains the
  tax (``tax = amount x rate / (100 + rate)``); otherwise the tax is added on top
  (``tax = amount x rate / 100``) and counts in the total.
- A fee is ``amount`` per ticket or per booking, or ``percent`` of the tickets' amount after the
  discount; its amount follows its own tax rule the same way. A fee ``passed_on`` is paid by the
  buyer (in ``fees`` and the total); otherwise the organizer absorbs it (``absorbed_fees``, not
  in the total, no tax on the buyer's invoice).
- ``total = subtotal - discount + fees + added taxes`` (included taxes are inside the amounts).

Frozen at hold time: the inputs (:class:`PriceInputs`: unit prices, discounts, rates, fees) are
stored on the booking (``bookings.price``); the breakdown of any number of remaining seats is a
pure function of them (:func:`breakdown`). A partial refund gives back
``breakdown(before) - breakdown(after)`` line by line, so the refunds of a booking telescope:
together they are exactly what was charged, never more, and no cent is created or lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

#: currencies whose minor unit is not the cent (ISO 4217); every other has 2 decimals
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

_HUNDRED = Decimal(100)
VERSION = 1


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount (0.01 for EUR, 1 for JPY)."""
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency.upper(), 2))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit (the one rounding rule)."""
    return value.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class TaxRate:
    name: str
    rate: Decimal  # percent, e.g. 19.00
    included: bool  # the amounts contain the tax (price_includes_tax)

    @property
    def key(self) -> tuple[str, Decimal, bool]:
        return (self.name, self.rate, self.included)

    def of(self, amount: Decimal, currency: str) -> Decimal:
        """The tax of one line's amount, rounded (per line)."""
        if self.included:
            return round_money(amount * self.rate / (_HUNDRED + self.rate), currency)
        return round_money(amount * self.rate / _HUNDRED, currency)


@dataclass(frozen=True)
class LineIn:
    key: str  # the ticket type's id
    name: str
    quantity: int
    unit_price: Decimal
    discount: Decimal  # of the whole line (all its seats)
    tax: TaxRate | None = None


@dataclass(frozen=True)
class FeeIn:
    name: str
    amount: Decimal | None = None
    percent: Decimal | None = None
    per: str = "ticket"  # "ticket" | "booking" (amount fees only)
    passed_on: bool = True
    tax: TaxRate | None = None


@dataclass(frozen=True)
class PriceInputs:
    """What a booking's prices were at hold time (frozen on the booking)."""

    currency: str
    lines: tuple[LineIn, ...]
    fees: tuple[FeeIn, ...] = ()

    @property
    def taxed(self) -> bool:
        """Anything beyond price - discount: a fee or a tax rule."""
        return bool(self.fees) or any(line.tax is not None for line in self.lines)

    def full(self) -> dict[str, int]:
        return {line.key: line.quantity for line in self.lines}

    def to_json(self) -> dict[str, Any]:
        def tax(t: TaxRate | None) -> Any:
            return None if t is None else [t.name, str(t.rate), t.included]

        return {
            "v": VERSION,
            "currency": self.currency,
            "lines": [
                [x.key, x.name, x.quantity, str(x.unit_price), str(x.discount), tax(x.tax)]
                for x in self.lines
            ],
            "fees": [
                [
                    f.name,
                    None if f.amount is None else str(f.amount),
                    None if f.percent is None else str(f.percent),
                    f.per,
                    f.passed_on,
                    tax(f.tax),
                ]
                for f in self.fees
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceInputs:
        def tax(t: Any) -> TaxRate | None:
            return None if t is None else TaxRate(str(t[0]), Decimal(t[1]), bool(t[2]))

        return cls(
            currency=data["currency"],
            lines=tuple(
                LineIn(str(k), str(n), int(q), Decimal(u), Decimal(d), tax(t))
                for k, n, q, u, d, t in data["lines"]
            ),
            fees=tuple(
                FeeIn(
                    str(n),
                    None if a is None else Decimal(a),
                    None if p is None else Decimal(p),
                    str(per),
                    bool(passed),
                    tax(t),
                )
                for n, a, p, per, passed, t in data.get("fees", [])
            ),
        )


@dataclass
class TaxAmount:
    name: str
    rate: Decimal
    included: bool
    amount: Decimal


@dataclass
class PricedLine:
    """One line of an invoice: a ticket type's seats or a fee, with its tax."""

    kind: str  # "ticket" | "fee"
    name: str
    quantity: int
    amount: Decimal  # as listed (incl. the tax when included), after the discount
    tax: Decimal
    tax_name: str | None
    tax_rate: Decimal | None
    tax_included: bool
    discount: Decimal = Decimal(0)
    passed_on: bool = True

    @property
    def gross(self) -> Decimal:
        return self.amount if self.tax_included else self.amount + self.tax

    @property
    def net(self) -> Decimal:
        return self.amount - self.tax if self.tax_included else self.amount


@dataclass
class Breakdown:
    currency: str
    subtotal: Decimal
    discount: Decimal
    fees: Decimal
    absorbed_fees: Decimal
    taxes: list[TaxAmount]
    total: Decimal
    lines: list[PricedLine] = field(default_factory=list)

    @property
    def tax_total(self) -> Decimal:
        return sum((t.amount for t in self.taxes), Decimal(0))

    @property
    def net_revenue(self) -> Decimal:
        """What the organizer keeps of the tickets: net of tax and of passed-on fees."""
        return sum((x.net for x in self.lines if x.kind == "ticket"), Decimal(0))

    def answer(self) -> dict[str, Any]:
        """The ``price`` object of the API's answers (amounts as decimal strings)."""
        return {
            "subtotal": str(self.subtotal),
            "discount": str(self.discount),
            "fees": str(self.fees),
            "taxes": [
                {
                    "name": t.name,
                    "rate": str(t.rate),
                    "amount": str(t.amount),
                    "included": t.included,
                }
                for t in self.taxes
            ],
            "total": str(self.total),
            "currency": self.currency,
        }

    def minus(self, other: Breakdown) -> Breakdown:
        """This breakdown less ``other`` (the part given back between two seat counts)."""
        theirs = {(t.name, t.rate, t.included): t.amount for t in other.taxes}
        return Breakdown(
            currency=self.currency,
            subtotal=self.subtotal - other.subtotal,
            discount=self.discount - other.discount,
            fees=self.fees - other.fees,
            absorbed_fees=self.absorbed_fees - other.absorbed_fees,
            taxes=[
                TaxAmount(
                    t.name,
                    t.rate,
                    t.included,
                    t.amount - theirs.get((t.name, t.rate, t.included), Decimal(0)),
                )
                for t in self.taxes
            ],
            total=self.total - other.total,
        )


def _line_discount(line: LineIn, seats: int, currency: str) -> Decimal:
    if seats == line.quantity:
        return line.discount
    if line.quantity == 0:
        return Decimal(0)
    return round_money(line.discount * seats / line.quantity, currency)


def breakdown(inputs: PriceInputs, seats: Mapping[str, int] | None = None) -> Breakdown:
    """The breakdown of ``seats`` (ticket type → seats still in the booking; default: every
    seat) at the frozen prices."""
    cur = inputs.currency
    have = inputs.full() if seats is None else seats
    zero = Decimal(0)
    lines: list[PricedLine] = []
    subtotal = discount = zero
    n_seats = 0
    for x in inputs.lines:
        n = max(0, min(int(have.get(x.key, 0)), x.quantity))
        n_seats += n
        gross = round_money(x.unit_price * n, cur)
        disc = _line_discount(x, n, cur)
        amount = gross - disc
        subtotal += gross
        discount += disc
        lines.append(
            PricedLine(
                "ticket",
                x.name,
                n,
                amount,
                x.tax.of(amount, cur) if x.tax else zero,
                x.tax.name if x.tax else None,
                x.tax.rate if x.tax else None,
                x.tax.included if x.tax else True,
                discount=disc,
            )
        )
    goods = subtotal - discount
    fees = absorbed = zero
    for f in inputs.fees:
        if f.percent is not None:
            amount = round_money(goods * f.percent / _HUNDRED, cur) if n_seats else zero
            qty = 1 if n_seats else 0
        elif f.per == "booking":
            amount = round_money(f.amount or zero, cur) if n_seats else zero
            qty = 1 if n_seats else 0
        else:
            amount = round_money((f.amount or zero) * n_seats, cur)
            qty = n_seats
        tax = f.tax.of(amount, cur) if f.tax else zero
        lines.append(
            PricedLine(
                "fee",
                f.name,
                qty,
                amount,
                tax,
                f.tax.name if f.tax else None,
                f.tax.rate if f.tax else None,
                f.tax.included if f.tax else True,
                passed_on=f.passed_on,
            )
        )
        if f.passed_on:
            fees += amount
        else:
            absorbed += amount
    taxes: dict[tuple[str, Decimal, bool], Decimal] = {}
    for line in lines:
        if line.tax_name is None or line.tax_rate is None or not line.passed_on:
            continue
        k = (line.tax_name, line.tax_rate, line.tax_included)
        taxes[k] = taxes.get(k, zero) + line.tax
    added = sum((a for (_, _, inc), a in taxes.items() if not inc), zero)
    return Breakdown(
        currency=cur,
        subtotal=subtotal,
        discount=discount,
        fees=fees,
        absorbed_fees=absorbed,
        taxes=[TaxAmount(n, r, inc, a) for (n, r, inc), a in taxes.items()],
        total=goods + fees + added,
        lines=lines,
    )


def untaxed(currency: str, lines: list[tuple[str, str, int, Decimal, Decimal]]) -> PriceInputs:
    """The inputs of a booking with no tax rule and no fee (nothing frozen on it): its lines
    (type id, name, quantity, unit price, discount)."""
    return PriceInputs(
        currency=currency,
        lines=tuple(LineIn(k, n, q, u, d) for k, n, q, u, d in lines),
    )


def simple_answer(amount: Decimal, discount: Decimal, currency: str) -> dict[str, Any]:
    """The ``price`` of a booking without tax or fee, from its amount and discount."""
    return Breakdown(
        currency=currency,
        subtotal=amount + discount,
        discount=discount,
        fees=Decimal(0),
        absorbed_fees=Decimal(0),
        taxes=[],
        total=amount,
    ).answer()


def answer_of(
    frozen: Mapping[str, Any] | None,
    seats: Mapping[str, int] | None,
    amount: Decimal,
    discount: Decimal,
    currency: str,
) -> dict[str, Any]:
    """A booking's ``price`` answer: its frozen breakdown over the seats it still has
    (``seats``: ticket type → seats; None: all), or, with nothing frozen (no tax rule, no
    fee), the one its amount and discount make."""
    if frozen is None:
        return simple_answer(amount, discount, currency)
    return breakdown(PriceInputs.from_json(frozen), seats).answer()


def inputs_from_rows(
    currency: str,
    lines: list[Any],
    fees: list[Mapping[str, Any]] | None,
    rates: Mapping[str, Any] | None,
) -> PriceInputs:
    """Build the frozen inputs from what the reserve read: its lines ``[type id, quantity,
    unit price, discount, tax rule id, name]``, the event's fees, and the organization's tax
    rules by id ``{id: [name, rate, included]}``."""
    rates = rates or {}

    def tax(rule_id: Any) -> TaxRate | None:
        found = rates.get(str(rule_id)) if rule_id is not None else None
        return (
            None
            if found is None
            else TaxRate(str(found[0]), Decimal(str(found[1])), bool(found[2]))
        )

    return PriceInputs(
        currency=currency,
        lines=tuple(
            LineIn(
                str(tt),
                str(name),
                int(q),
                Decimal(str(price)),
                Decimal(str(disc or 0)),
                tax(rule),
            )
            for tt, q, price, disc, rule, name in lines
        ),
        fees=tuple(
            FeeIn(
                name=str(f["name"]),
                amount=None if f.get("amount") is None else Decimal(str(f["amount"])),
                percent=None if f.get("percent") is None else Decimal(str(f["percent"])),
                per=str(f.get("per") or "ticket"),
                passed_on=bool(f.get("passed_on", True)),
                tax=tax(f.get("tax_rule_id")),
            )
            for f in fees or []
        ),
    )
