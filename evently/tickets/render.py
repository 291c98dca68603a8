"""What a buyer holds: the QR of a ticket secret (SVG/PNG), a PDF with one page per ticket,
and the event as an RFC 5545 calendar. Pure functions over small views, no database.

The QR code is drawn into the PDF as vector cells (one filled path), so it stays sharp at any
zoom or printer resolution; tests render the page with PDFium and decode it with zxing-cpp.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.drawing import GraphicsContext, PaintedPath
from icalendar import Calendar, Event, vText

#: Error correction M (15 %) is boosted to a higher level by segno when it fits the same version.
QR_ERROR = "m"
QR_BORDER = 4  # the quiet zone the standard asks for, in modules
PRODID = "-//Evently//Evently tickets//EN"

# A Unicode TrueType font for names like "Łukasz" or "王芳"; fonts-dejavu-core on Debian.
# Without one the PDF falls back to Helvetica and replaces what Latin-1 cannot show.
_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/Library/Fonts"),
)


@dataclass(frozen=True, slots=True)
class EventView:
    event_id: uuid.UUID
    name: str
    starts_at: datetime
    ends_at: datetime
    venue_name: str
    venue_address: str | None = None
    city: str | None = None
    description: str = ""
    url: str | None = None
    #: IANA zone used to SHOW times on the ticket and in mails (the .ics is always UTC)
    timezone: str = "UTC"
    cancelled: bool = False
    #: bump when the event's time or place changes so calendars replace their copy
    sequence: int = 0

    @property
    def location(self) -> str:
        return ", ".join(p for p in (self.venue_name, self.venue_address, self.city) if p)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.timezone))

    @property
    def when(self) -> str:
        """E.g. ``Fri 27 Nov 2026, 19:30 \N{EN DASH} 23:00 (Europe/Berlin)``."""
        start, end = self.local(self.starts_at), self.local(self.ends_at)
        end_fmt = "%H:%M" if start.date() == end.date() else "%a %d %b %Y, %H:%M"
        return f"{start:%a %d %b %Y, %H:%M} \N{EN DASH} {end.strftime(end_fmt)} ({self.timezone})"


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket_id: uuid.UUID
    booking_id: uuid.UUID
    secret: str
    holder_name: str
    #: what the door staff reads, e.g. "Seat 12" or "General admission #12"
    seat_label: str
    ticket_type: str | None = None


# --- QR -----------------------------------------------------------------------------------------


def make_qr(secret: str) -> segno.QRCode:
    return segno.make_qr(secret, error=QR_ERROR)


def qr_svg(secret: str, *, scale: int = 8, border: int = QR_BORDER) -> str:
    """A standalone SVG document (for ``GET .../tickets/{id}.svg``)."""
    buf = io.BytesIO()
    make_qr(secret).save(
        buf, kind="svg", scale=scale, border=border, xmldecl=True, svgns=True, title="Ticket"
    )
    return buf.getvalue().decode("utf-8")


def qr_png(secret: str, *, scale: int = 8, border: int = QR_BORDER) -> bytes:
    buf = io.BytesIO()
    make_qr(secret).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


# --- PDF ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _unicode_font() -> tuple[Path, Path] | None:
    for folder in _FONT_CANDIDATES:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def unicode_font() -> tuple[Path, Path] | None:
    """DejaVu Sans (regular, bold) when installed; None: the PDF uses Helvetica (Latin-1)."""
    return _unicode_font()


class _TicketPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.set_auto_page_break(auto=False)
        self.set_margins(20, 20, 20)
        font = _unicode_font()
        if font is not None:
            self.add_font("Body", "", str(font[0]))
            self.add_font("Body", "B", str(font[1]))
            self.body_family = "Body"
            self.has_unicode_font = True
        else:
            self.body_family = "Helvetica"
            self.has_unicode_font = False

    def text_safe(self, text: str) -> str:
        if self.has_unicode_font:
            return text
        return text.encode("latin-1", "replace").decode("latin-1")

    def use(self, size: float, *, bold: bool = False) -> None:
        self.set_font(self.body_family, "B" if bold else "", size)

    def line_of(self, text: str, size: float, *, bold: bool = False, gap: float = 1.5) -> None:
        self.use(size, bold=bold)
        self.multi_cell(0, size * 0.45, self.text_safe(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)

    def field(self, label: str, value: str) -> None:
        self.use(8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 4.5, self.text_safe(label.upper()), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.line_of(value, 11.5, gap=2.5)

    def qr(self, secret: str, x: float, y: float, size: float) -> None:
        """Every dark module as a cell of one filled path: no seams, no image resampling."""
        qr = make_qr(secret)
        modules = len(qr.matrix) + 2 * QR_BORDER
        cell = size / modules
        # white quiet zone, so the code reads even on a coloured or dirty background
        self.set_fill_color(255, 255, 255)
        self.rect(x, y, size, size, style="F")
        path = PaintedPath()
        path.style.fill_color = "#000000"
        path.style.stroke_color = None
        for row, line in enumerate(qr.matrix):
            col = 0
            while col < len(line):
                if not line[col]:
                    col += 1
                    continue
                run = col
                while run < len(line) and line[run]:
                    run += 1
                path.rectangle(
                    x + (QR_BORDER + col) * cell,
                    y + (QR_BORDER + row) * cell,
                    (run - col) * cell,
                    cell,
                )
                col = run
        # add it without fpdf2's default deep copy, which costs ~60 ms a code
        group = GraphicsContext()
        group.add_item(path, clone=False)
        self.draw_path(group, copy=False)


def tickets_pdf(
    event: EventView,
    tickets: Sequence[TicketView],
    *,
    created_at: datetime | None = None,
    qr_size_mm: float = 80.0,
) -> bytes:
    """One A4 page per ticket; the QR is ``qr_size_mm`` wide (quiet zone included)."""
    if not tickets:
        raise ValueError("a tickets PDF needs at least one ticket")
    pdf = _TicketPDF()
    pdf.set_title(pdf.text_safe(f"Tickets \N{EN DASH} {event.name}"))
    pdf.set_author("Evently")
    pdf.set_creator("Evently")
    pdf.set_creation_date(created_at or datetime.now(UTC))

    for number, ticket in enumerate(tickets, start=1):
        pdf.add_page()
        pdf.use(9, bold=True)
        pdf.set_text_color(90, 90, 90)
        header = f"EVENTLY TICKET  ·  {number} of {len(tickets)}"
        pdf.cell(0, 5, pdf.text_safe(header), new_x="LMARGIN", new_y="NEXT")
        if event.cancelled:
            pdf.set_text_color(200, 0, 0)
            pdf.cell(0, 5, "THIS EVENT HAS BEEN CANCELLED", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(3)
        pdf.line_of(event.name, 22, bold=True, gap=4)
        pdf.field("When", event.when)
        pdf.field("Where", event.location)
        seat = ticket.seat_label + (f"  ·  {ticket.ticket_type}" if ticket.ticket_type else "")
        pdf.field("Seat / ticket type", seat)
        pdf.field("Name", ticket.holder_name)
        pdf.field("Booking", str(ticket.booking_id))

        size = qr_size_mm
        x = (pdf.w - size) / 2
        y = min(pdf.get_y() + 6, pdf.h - 20 - size - 14)
        pdf.qr(ticket.secret, x, y, size)
        pdf.set_xy(pdf.l_margin, y + size + 2)
        pdf.use(9)
        pdf.multi_cell(
            0,
            4.5,
            "Show this code at the entrance. It is valid once: "
            "the first scan admits, every copy after it is refused.",
            align="C",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_text_color(110, 110, 110)
        pdf.use(7.5)
        pdf.cell(0, 4, f"Ticket {ticket.ticket_id}", align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    return bytes(pdf.output())


# --- iCalendar ----------------------------------------------------------------------------------


def event_uid(event_id: uuid.UUID, domain: str = "evently") -> str:
    """Stable per event, so a re-sent invitation updates the calendar entry instead of adding."""
    return f"event-{event_id}@{domain}"


def event_ics(
    event: EventView,
    *,
    domain: str = "evently",
    dtstamp: datetime | None = None,
) -> bytes:
    """A one-event VCALENDAR (METHOD:PUBLISH), times in UTC."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")

    vevent = Event()
    vevent.add("uid", event_uid(event.event_id, domain))
    vevent.add("dtstamp", (dtstamp or datetime.now(UTC)).astimezone(UTC))
    vevent.add("dtstart", event.starts_at.astimezone(UTC))
    vevent.add("dtend", event.ends_at.astimezone(UTC))
    vevent.add("summary", event.name)
    vevent.add("location", vText(event.location))
    if event.description:
        vevent.add("description", event.description)
    if event.url:
        vevent.add("url", event.url)
    vevent.add("sequence", event.sequence)
    vevent.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    cal.add_component(vevent)
    return bytes(cal.to_ical())
