"""The commands the server answers (workspace/executeCommand); editors name them as here."""

CMD_RUN_TESTS = "cyclefix.runTests"
CMD_REFINE = "cyclefix.refine"
CMD_CANCEL = "cyclefix.cancel"
CMD_APPLY_FIX = "cyclefix.applyFix"
CMD_SHOW_DIFF = "cyclefix.showDiff"
