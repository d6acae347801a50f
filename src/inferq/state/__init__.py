"""Durable state (the catalog and the queue), chosen by URL: ``sqlite://`` or ``memory://``."""
