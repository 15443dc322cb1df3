"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class CustsegError(Exception):
    """Base class: a problem with the input or configuration, not a bug."""


class InputError(CustsegError):
    """A data file breaks the data contract (missing column, bad values, empty file, ...)."""


class ConfigError(CustsegError):
    """A configuration file or option is invalid."""


def check_keys(section: str, data: dict, cls: type) -> None:
    """A ConfigError naming the keys of `[section]` that the dataclass `cls` does not have."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"[{section}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
