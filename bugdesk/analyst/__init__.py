"""The analysts' read-only view: Datasette (``serve``), the SQL guard (``guard``), SQLite snapshots (``export``).

Nothing here is imported by the core; Datasette itself is imported only inside
the functions that build a server, so ``import bugdesk`` never pays for it.
"""
