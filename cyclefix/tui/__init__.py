"""The terminal front-end: watch a project, run its tests, stream refinements, review fixes.

Only `cli` is imported by the `cyclefix` command at start-up; the Textual app lives in `app`
and is imported when the `tui` subcommand runs.
"""
