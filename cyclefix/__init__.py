"""cyclefix: make failing Python code pass its tests with a local model, showing only verified fixes."""

__version__ = "0.1.0"
