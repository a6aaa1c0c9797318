"""Errors raised by the simulators and the scenario loader."""


class ScenarioError(ValueError):
    """A scenario file or preset is malformed; the message names the offending field."""
