"""What inferq is measured against: a bare ASGI ceiling, Celery on Redis, moto's server."""
