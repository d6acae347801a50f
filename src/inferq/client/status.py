"""Has an inference finished? Asked of the server's status API where there is one, else of S3.

AWS has no status API for async inference (aws/aws-sdk#306 asks for a
``GetAsyncInvocationStatus``), so the portable answer is HeadObject on the output location,
then on the failure location: the result objects appear only when the request is settled.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from inferq.client.errors import is_not_found
from inferq.client.session import Clients
from inferq.client.tracking import Status, Tracked
from inferq.client.upload import split_s3_uri


class StatusSource(Protocol):
    """Where the status of an inference comes from."""

    def status(self, item: Tracked) -> Status: ...


def find_status_api(clients: Clients) -> StatusSource | None:
    """The server's own status API, or None where it has none.

    This is the seam for inferq's status API: none exists yet (on inferq or AWS), so this
    answers None and ``inferq wait`` polls S3. When inferq offers one, probe for it here (once
    per command, at ``clients.options.endpoint_url``) and return a source that asks it by
    InferenceId; servers without one keep getting HeadObject.
    """
    return None


class HeadObjectStatus:
    """Completed once the output object exists, Failed once the failure object does."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def status(self, item: Tracked) -> Status:
        if item.output is not None and self.exists(item.output):
            return Status.COMPLETED
        if item.failure is not None and self.exists(item.failure):
            return Status.FAILED
        return Status.PENDING

    def exists(self, location: str) -> bool:
        bucket, key = split_s3_uri(location)
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
        return True


def status_source(clients: Clients) -> StatusSource:
    return find_status_api(clients) or HeadObjectStatus(clients("s3"))
