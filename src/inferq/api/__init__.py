"""The HTTP API: one gateway routing to SageMaker Runtime, the control plane and S3."""
