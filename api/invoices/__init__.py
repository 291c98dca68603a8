"""Invoices and credit notes of bookings (issue 31)."""
