"""The error every model problem becomes: a one-line message naming what to do."""

from cyclefix.errors import CyclefixError


class ModelError(CyclefixError):
    """A model is unknown, missing, corrupt, unreachable or failed to load or generate."""
