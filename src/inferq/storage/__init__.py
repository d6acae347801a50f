"""Object storage, chosen by URL: ``file://`` (embedded default) or ``memory://``."""
