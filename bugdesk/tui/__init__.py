"""Provides the triage dashboard (``bugdesk tui``).

Importing this package is cheap and Textual-free: the app lives in ``bugdesk.tui.app``
and is imported only when the dashboard starts, so the rest of the CLI stays fast.
"""
