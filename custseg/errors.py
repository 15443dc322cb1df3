"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class CustsegError(Exception):
    """Base class: a problem with the input or configuration, not a bug."""


class InputError(CustsegError):
    """A data file breaks the data contract (missing column, bad values, empty file, ...)."""


class ConfigError(CustsegError):
    """A configuration file or option is invalid."""
