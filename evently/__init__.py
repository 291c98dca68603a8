"""Evently shared core. Keep this file free of imports: workflows load it in the sandbox."""

__version__ = "0.1.0"
