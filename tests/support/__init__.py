"""Helpers shared by tests of several directories (import from here, never from a test module)."""
