"""What every run report shares: the optional email notifier, and one time budget for a report's calls.

A report must never fail its sensor (a failing run-status sensor would not move past the run and would
hold every later report), so each call runs in a thread against a shared budget below Dagster's 60 s
sensor evaluation timeout; a call still running when it is spent is abandoned (its own timeouts end
it) and logged, and the calls after it are skipped.
"""

import threading
import time
from collections.abc import Callable

from dagster import RunStatusSensorContext

from fintech_release.resources.email import EmailNotifier
from fintech_release.resources.source import SourceControl

REPORT_BUDGET_SECONDS = 40.0
Report = Callable[[RunStatusSensorContext, SourceControl, EmailNotifier | None], None]


def with_notifier(report: Report, sends_email: bool) -> Callable[..., None]:
    """The sensor function for `report`: Dagster hands resources over by parameter, so the `notifier` is asked
    for (and must be configured) only when the report sends email."""
    if sends_email:

        def report_with_email(context: RunStatusSensorContext, source: SourceControl, notifier: EmailNotifier) -> None:
            report(context, source, notifier)

        return report_with_email

    def report_without_email(context: RunStatusSensorContext, source: SourceControl) -> None:
        report(context, source, None)

    return report_without_email


class ReportBudget:
    """Runs a report's calls one after the other, each in a thread, until `seconds` in total are spent.

    A call returns (log level, message); the message is logged here, in the sensor's thread, so an
    abandoned call never logs into a finished tick.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def run(self, context: RunStatusSensorContext, what: str, action: Callable[[], tuple[str, str]]) -> None:
        """Run `action`; log (never raise) its failure, or that the budget ran out before or during it."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            context.log.warning(f"{what} skipped: this report's {self.seconds:g} s were spent")
            return
        outcome: list[tuple[str, str]] = []

        def guarded() -> None:
            try:
                outcome.append(action())
            except Exception as error:  # noqa: BLE001 - a report never fails the sensor (see the module docstring)
                outcome.append(("warning", f"{what} failed and was skipped: {type(error).__name__}: {error}"))

        # A daemon thread: a call still running when the budget is spent must not hold the process at exit.
        worker = threading.Thread(target=guarded, name=f"report: {what}", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            context.log.warning(f"{what} abandoned: not done within this report's {self.seconds:g} s")
            return
        level, message = outcome[0]
        getattr(context.log, level)(message)
