"""One signed HTTP request, made once with botocore's SigV4 and replayed many times."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.helpers.inferq import ACCESS_KEY, REGION, SECRET_KEY

BODY = b'{"inputs": "inferq benchmark payload"}'


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def lua_file(self, path: Path) -> Path:
        """Write this request as the Lua table that ``replay.lua`` loads."""
        headers = ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in self.headers.items())
        path.write_text(
            f"return {{method = {_lua(self.method)}, path = {_lua(self.path)}, "
            f"headers = {{{headers}}}, body = {_lua(self.body.decode('latin-1'))}}}\n"
        )
        return path


def _lua(text: str) -> str:
    """A Lua string literal: printable ASCII as is, anything else as a decimal escape."""
    escaped = "".join(
        ch if 32 <= ord(ch) < 127 and ch not in '"\\' else f"\\{ord(ch)}" for ch in text
    )
    return f'"{escaped}"'


def invoke_async(
    base_url: str,
    endpoint: str,
    body: bytes = BODY,
    *,
    content_type: str = "application/json",
    input_location: str | None = None,
) -> Request:
    """InvokeEndpointAsync with an inline body (or an InputLocation), signed for 15 minutes."""
    url = f"{base_url}/endpoints/{endpoint}/async-invocations"
    headers = {"X-Amzn-SageMaker-Content-Type": content_type}
    if input_location is not None:
        headers["X-Amzn-SageMaker-InputLocation"] = input_location
        body = b""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sagemaker", REGION).add_auth(request)
    # wrk sends Host without the port unless told: send the one that was signed
    return Request("POST", url, {"Host": urlsplit(url).netloc, **request.headers}, body)


def plain_post(url: str, body: bytes = BODY, content_type: str = "application/json") -> Request:
    """The same payload, unsigned (for peers and ceilings that check no signature)."""
    headers = {"Host": urlsplit(url).netloc, "Content-Type": content_type}
    return Request("POST", url, headers, body)
