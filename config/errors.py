"""The one exception configuration raises: its message is a complete, one-line explanation."""


class ConfigError(Exception):
    """A configuration file, value or environment variable that cannot be used."""
