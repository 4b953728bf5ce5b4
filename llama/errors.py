"""Exceptions that reach a user as one clear line and a non-zero exit."""


class LlamaError(Exception):
    """Base class for errors a user can act on; the CLI prints ``str(err)`` only."""


class InputError(LlamaError):
    """An input file or value is unreadable, malformed or physically invalid."""


class ConfigurationError(LlamaError):
    """A setting, preset or required resource is missing or inconsistent."""
