"""Snapshots of the dashboard at 120x40 and 80x24, on fixed data with a fixed clock.

Update them after an intended change with ``uv run pytest tests/tui --snapshot-update`` and look
at the report pytest-textual-snapshot writes before committing the new SVGs.
"""

from __future__ import annotations

import pytest
from tuikit import settle

from bugdesk.tui.widgets import ReportList

SIZES = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])


@SIZES
class TestReportList:
    """The main screen: live counts, the filter line, the list and the footer."""

    def test_open_reports_most_urgent_first(self, snap_compare, dashboard, size):
        """Open canonical reports by SLA due; the breached one stands out, the claimed one names its agent."""

        async def run_before(pilot):
            await settle(pilot)

        assert snap_compare(dashboard(), terminal_size=size, run_before=run_before)


@SIZES
class TestDetailView:
    """The detail view of a report with a stack trace, telemetry, a duplicate and a timeline."""

    def test_report_with_stack_trace_and_duplicate(self, snap_compare, dashboard, size):
        """Report #1: overview, highlighted traceback, group with #5, events newest first."""

        async def run_before(pilot):
            await settle(pilot)
            pilot.app.open_report(1)
            await settle(pilot)

        assert snap_compare(dashboard(), terminal_size=size, run_before=run_before)


@SIZES
class TestDialogs:
    """A dialog over the list."""

    def test_move_dialog_offers_only_allowed_targets(self, snap_compare, dashboard, size):
        """Moving triaged report #2: new, in_progress, resolved and the three ways of closing."""

        async def run_before(pilot):
            await settle(pilot)
            table = pilot.app.screen.query_one(ReportList)
            while table.current_row.number != 2:
                await pilot.press("down")
            await pilot.press("m")
            await settle(pilot)

        assert snap_compare(dashboard(), terminal_size=size, run_before=run_before)
