"""The one error type every part raises for problems a user can act on."""


class CyclefixError(Exception):
    """A problem with input, configuration or a model, with a one-line message for the user."""
