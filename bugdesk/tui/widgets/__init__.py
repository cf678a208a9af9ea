"""Provides the dashboard's widgets, one module each."""

from bugdesk.tui.widgets.counts_bar import CountsBar
from bugdesk.tui.widgets.duplicates_table import DuplicatesTable
from bugdesk.tui.widgets.filter_bar import FilterBar, SearchInput
from bugdesk.tui.widgets.group_summary import GroupSummary
from bugdesk.tui.widgets.report_list import ReportList
from bugdesk.tui.widgets.report_overview import ReportOverview
from bugdesk.tui.widgets.stack_trace import StackTrace
from bugdesk.tui.widgets.timeline import Timeline

__all__ = [
    "CountsBar",
    "DuplicatesTable",
    "FilterBar",
    "GroupSummary",
    "ReportList",
    "ReportOverview",
    "SearchInput",
    "StackTrace",
    "Timeline",
]
