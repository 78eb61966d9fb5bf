"""What the TUI is opened on and how it behaves; fixed for the life of the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cyclefix.refine import RefineConfig
from cyclefix.trust import TrustRequest


@dataclass(frozen=True)
class TuiSettings:
    root: Path  # the project folder
    model: str  # a spec for open_backend
    # Tests to run instead of the whole suite (paths or node ids), as given on the command line.
    tests: tuple[str, ...] | None = None
    config: RefineConfig = field(default_factory=RefineConfig)
    # Model specs offered by the `m` chooser.
    model_names: tuple[str, ...] = ()
    watch: bool = True
    run_on_start: bool = True
    # False hides durations, tokens/s and elapsed time (for reproducible screenshots).
    show_timings: bool = True
    # Project settings (model, python) waiting for the user's trust: asked in a dialog on start.
    untrusted: tuple[TrustRequest, ...] = ()
    # What accepting a fix does in git besides writing it: "commit", "stage" or "none".
    git_on_apply: str = "none"
