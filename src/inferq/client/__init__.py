"""The client side of inferq: commands that talk to any SageMaker endpoint, inferq's or AWS's.

Everything here goes through botocore clients (its credential chain, its signing, its retries),
so what goes on the wire is what the AWS CLI and boto3 send. Nothing here imports the server.
"""

from __future__ import annotations
