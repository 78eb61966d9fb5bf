"""One project session under both front-ends (`serve` and `tui`).

settings   the effective settings of a project: flags > editor/TUI > [tool.cyclefix] > user file
models     the one loaded model, opened on first need and used by one thread at a time
jobs       test runs and refinements in flight: supersede, cancel, debounce bookkeeping
ledger     the merged results of partial test runs, with the suspects of each failure
fixes      verified fixes and whether the files they change still hold what they were made from

It uses only cyclefix.refine's public API and cyclefix.config; front-ends add the I/O (LSP
messages, Textual widgets) around it.
"""
