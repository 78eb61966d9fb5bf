"""What the server knows about one project: the session's run ledger and verified fix, plus
the syntax problems of saved files and what was last published."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.runner.results import CollectionError, TestRunResult
from cyclefix.server.diagnostics import Failure, SyntaxProblem
from cyclefix.session.fixes import VerifiedFix
from cyclefix.session.ledger import RunLedger


@dataclass
class ProjectState:
    root: Path
    ledger: RunLedger = field(init=False)
    syntax_problems: dict[Path, SyntaxProblem] = field(default_factory=dict)
    fix: VerifiedFix | None = None
    # Files that carried diagnostics at the last publish, to clear the ones now clean.
    published: set[Path] = field(default_factory=set)
    # How many refinements were asked for: the seed of the next one, so "again" differs.
    refinements: int = 0

    def __post_init__(self) -> None:
        self.ledger = RunLedger(self.root)

    @property
    def failures(self) -> dict[str, Failure]:
        """Each failing test with its suspects (none when it was not localized)."""
        suspects = self.ledger.suspects
        return {
            case.nodeid: Failure(case=case, suspects=suspects.get(case.nodeid, ()))
            for case in self.ledger.failures
        }

    @property
    def collection_errors(self) -> dict[str, CollectionError]:
        return self.ledger.collection_errors

    @property
    def last_run(self) -> TestRunResult | None:
        return self.ledger.last_run

    def failing_nodeids(self) -> tuple[str, ...]:
        return self.ledger.failing_nodeids()
