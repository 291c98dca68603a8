"""Every Temporal task queue, named in one place (workflows import this: keep it import-free)."""

BOOKING = "evently-booking"  # booking/waitlist/event workflows + inventory activities
SEARCH = "evently-search"  # search-index writes: a slow search cluster never holds up bookings
PAYMENTS = "evently-payments"  # payment provider calls and notifications

ALL = {"booking": BOOKING, "search": SEARCH, "payments": PAYMENTS}
