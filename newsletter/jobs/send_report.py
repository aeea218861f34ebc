"""What one `newsletter send` did, as its command reports it (jobs/sending.py fills it in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from newsletter.core.timefmt import format_minute


@dataclass
class SendReport:
    """What one run did. ``ok`` says whether an operator must act (the exit status): a
    recipient the provider refused or deferred is the run working as intended, reported in the
    summary and in ``refusals``, while ``errors`` are what someone has to fix (credentials,
    configuration, content that does not render, a provider that is down)."""

    queued: int = 0
    sent: int = 0
    failed: int = 0  # refused by the provider for the recipient: the address is now suppressed
    deferred: int = 0  # the provider asked to try this recipient again later
    retry: int = 0  # not sent for a reason someone must look at; tried again by a later run
    uncertain: int = 0  # this run's requests that got no answer
    rendered: int = 0  # dry run only
    uncertain_found: int = 0  # rows of dead runs that this run found in flight: now uncertain
    kept: int = 0  # answers the database would not take, kept in the journal for the next run
    recovered: int = 0  # answers an earlier run kept in the journal, recorded by this one
    # Every uncertain row in the ledger once the run ended (not only this run's), and since
    # when the oldest has waited: until the author decides, every run says so.
    undecided: int = 0
    undecided_since: datetime | None = None
    clock_went_back_from: datetime | None = None
    interrupted: bool = False  # stopped by Ctrl-C; what it had in hand is accounted for above
    errors: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # one line per refused recipient

    @property
    def ok(self) -> bool:
        return not (self.retry or self.uncertain or self.errors)

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.failed:
            parts.append(f"{self.failed} refused by the provider (addresses now suppressed)")
        if self.deferred:
            parts.append(f"{self.deferred} deferred by the provider (sent on a later run)")
        if self.retry:
            parts.append(f"{self.retry} to retry on a later run")
        if self.uncertain:
            parts.append(f"{self.uncertain} got no answer from the provider (now uncertain)")
        if self.kept:
            parts.append(f"{self.kept} answers kept in the journal for the next run to record")
        if self.recovered:
            parts.append(f"{self.recovered} answers of an earlier run recorded from its journal")
        if self.undecided:
            parts.append(self.waiting())
        return ", ".join(parts)

    def waiting(self) -> str:
        """How many emails wait for the author's decision, and since when."""
        since = f" since {format_minute(self.undecided_since)}" if self.undecided_since else ""
        return (
            f"{self.undecided} waiting for your decision (uncertain{since}; see "
            "`newsletter uncertain`)"
        )


__all__ = ["SendReport"]
