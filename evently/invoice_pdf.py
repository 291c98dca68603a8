"""An invoice or credit note as a PDF (issue 31): one A4 page, fpdf2 like the tickets
(evently/tickets/render.py). Pure: the document row and its breakdown in, bytes out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fpdf import FPDF

from evently import pricing
from evently.tickets.render import unicode_font


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


class _InvoicePDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_margins(20, 20, 20)
        font = unicode_font()
        self.family_name = "Helvetica"
        if font is not None:
            self.add_font("Body", "", str(font[0]))
            self.add_font("Body", "B", str(font[1]))
            self.family_name = "Body"

    def safe(self, text: str) -> str:
        if self.family_name == "Body":
            return text
        return text.encode("latin-1", "replace").decode("latin-1")

    def row(self, cells: list[tuple[str, float, str]], *, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", 9.5)
        for text, width, align in cells:
            self.cell(width, 6, self.safe(text), align=align)
        self.ln(6)

    def block(self, title: str, lines: list[str]) -> None:
        self.set_font(self.family_name, "B", 9.5)
        self.cell(0, 5, self.safe(title), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family_name, "", 9.5)
        for line in lines:
            if line:
                self.multi_cell(0, 5, self.safe(line), new_x="LMARGIN", new_y="NEXT")
        self.ln(3)


def render(doc: Any, b: pricing.Breakdown, *, refers_to: str | None, event_name: str) -> bytes:
    """``doc``: an ``invoices`` row (number, kind, created_at, currency, seller, buyer, total);
    ``b``: the amounts it covers (evently.invoices.document_breakdown)."""
    cur = doc.currency
    pdf = _InvoicePDF()
    # the document's own date: the same document renders to the same bytes (a retried mail)
    pdf.set_creation_date(doc.created_at)
    pdf.add_page()
    pdf.set_font(pdf.family_name, "B", 16)
    title = "Invoice" if doc.kind == "invoice" else "Credit note"
    pdf.cell(0, 9, pdf.safe(f"{title} {doc.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family_name, "", 9.5)
    pdf.cell(0, 5, f"Date: {doc.created_at.date().isoformat()}", new_x="LMARGIN", new_y="NEXT")
    if refers_to:
        pdf.cell(0, 5, pdf.safe(f"Refers to invoice {refers_to}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"Booking: {doc.booking_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5, pdf.safe(f"Event: {event_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    seller = doc.seller or {}
    pdf.block(
        "Seller",
        [
            seller.get("legal_name") or seller.get("name") or "",
            seller.get("address") or "",
            f"VAT ID: {seller['vat_id']}" if seller.get("vat_id") else "",
        ],
    )
    buyer = doc.buyer or {}
    if any(buyer.get(k) for k in ("name", "address", "vat_id")):
        pdf.block(
            "Buyer",
            [
                buyer.get("name") or "",
                buyer.get("address") or "",
                f"VAT ID: {buyer['vat_id']}" if buyer.get("vat_id") else "",
            ],
        )
    widths = (70.0, 15.0, 30.0, 30.0, 25.0)
    pdf.row(
        list(zip(("Item", "Qty", "Amount", "Tax", "Rate"), widths, "LRRRR", strict=True)),
        bold=True,
    )
    for line in b.lines:
        if not line.passed_on or line.quantity == 0:
            continue
        rate = f"{line.tax_rate}%" if line.tax_rate is not None else "-"
        incl = " incl." if line.tax_rate is not None and line.tax_included else ""
        pdf.row(
            list(
                zip(
                    (
                        line.name,
                        str(line.quantity),
                        _money(line.amount, cur),
                        _money(line.tax, cur) + incl,
                        rate,
                    ),
                    widths,
                    "LRRRR",
                    strict=True,
                )
            )
        )
    pdf.ln(2)
    sums = [
        ("Subtotal", b.subtotal),
        ("Discount", -b.discount),
        ("Fees", b.fees),
        *((f"{t.name} {t.rate}%" + (" (incl.)" if t.included else ""), t.amount) for t in b.taxes),
        ("Net", b.total - b.tax_total),
        ("Total", b.total),
    ]
    for label, amount in sums:
        pdf.row([(label, 115.0, "R"), (_money(amount, cur), 55.0, "R")], bold=label == "Total")
    return bytes(pdf.output())
