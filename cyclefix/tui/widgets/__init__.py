"""The panels of the TUI's main screen."""
