"""Authentication and request-body integrity: SigV4, aws-chunked bodies and checksums."""

from __future__ import annotations

from inferq.auth.credentials import CredentialStore, StaticCredentials, load_or_create
from inferq.auth.middleware import SigV4Middleware

__all__ = ["CredentialStore", "SigV4Middleware", "StaticCredentials", "load_or_create"]
