"""Settings come from INFERQ_* variables, read once, and explicit overrides win."""

from __future__ import annotations

from pathlib import Path

from inferq.settings import Settings


def test_defaults_put_state_and_objects_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path)

    assert settings.resolved_state_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert settings.resolved_storage_url == f"file://{tmp_path / 'objects'}"
    assert (settings.port, settings.demo, settings.worker.max_attempts) == (8080, False, 3)
    assert settings.worker.retention_seconds == 7 * 24 * 3600


def test_environment_twins_of_every_part() -> None:
    settings = Settings.from_env(
        {
            "INFERQ_PORT": "9000",
            "INFERQ_DEMO": "true",
            "INFERQ_DATA_DIR": "/var/lib/inferq",
            "INFERQ_STATE_URL": "memory://",
            "INFERQ_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "INFERQ_SECRET_ACCESS_KEY": "s3cr3t",
            "INFERQ_WORKER_LEASE_SECONDS": "12.5",
            "INFERQ_WORKER_MAX_ATTEMPTS": "5",
            "INFERQ_WORKER_RETENTION_SECONDS": "0",
        }
    )

    assert (settings.port, settings.demo, settings.data_dir) == (
        9000,
        True,
        Path("/var/lib/inferq"),
    )
    assert settings.resolved_state_url == "memory://"
    assert (settings.auth.access_key_id, settings.auth.secret_access_key) == (
        "AKIAEXAMPLE",
        "s3cr3t",
    )
    assert (settings.worker.lease_seconds, settings.worker.max_attempts) == (12.5, 5)
    assert settings.worker.retention_seconds == 0


def test_flags_win_over_the_environment_and_none_means_unset() -> None:
    settings = Settings.from_env(
        {"INFERQ_PORT": "9000", "INFERQ_HOST": "0.0.0.0"}, port=7000, host=None
    )

    assert (settings.port, settings.host) == (7000, "0.0.0.0")
