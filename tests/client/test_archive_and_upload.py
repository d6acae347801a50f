"""model.tar.gz layouts for ``inferq deploy``, and the files ``--upload`` sends where."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from inferq.client.archive import program_name, write_archive
from inferq.client.deploy import endpoint_name_for, plan_from, versioned
from inferq.client.errors import InvalidInput
from inferq.client.upload import input_files, location_for, split_s3_uri


def archived(path: Path) -> list[str]:
    buffer = io.BytesIO()
    names = write_archive(path, buffer)
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        assert tar.getnames() == names
    return names


def test_a_folder_with_inference_py_goes_under_code(tmp_path: Path) -> None:
    (tmp_path / "inference.py").write_text("")
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.py").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"")

    assert archived(tmp_path) == [
        "code/inference.py",
        "code/lib/helper.py",
        "code/requirements.txt",
    ]


def test_a_sagemaker_layout_is_kept(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("")
    (tmp_path / "model.pt").write_bytes(b"weights")

    assert archived(tmp_path) == ["code/inference.py", "model.pt"]


def test_a_single_handler_file(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("")

    assert archived(tmp_path / "handler.py") == ["code/handler.py"]
    assert program_name(tmp_path / "handler.py") == "handler.py"
    assert program_name(tmp_path) is None


def test_no_handler_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")

    with pytest.raises(InvalidInput, match=r"no inference\.py"):
        archived(tmp_path)
    with pytest.raises(InvalidInput, match="not a Python handler"):
        archived(tmp_path / "notes.txt")


def test_names_come_from_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "My_Model v2"
    folder.mkdir()
    (folder / "inference.py").write_text("")

    assert endpoint_name_for(folder) == "My-Model-v2"
    assert endpoint_name_for(folder / "inference.py") == "My-Model-v2"
    assert len(versioned("x" * 63)) <= 63
    assert versioned("model") != versioned("model")  # one second apart or not
    assert re.fullmatch(r"model-\d{14}-[0-9a-f]{4}", versioned("model"))


def test_plan_defaults_live_under_the_bucket(tmp_path: Path) -> None:
    given = dict.fromkeys(
        ["name", "bucket", "image", "max_concurrency", "output_path", "failure_path", "role"]
    )
    given.update(instance_type="ml.m5.large", instances=1, env=(), name="Sentiment")

    plan = plan_from(tmp_path, given, "eu-west-1")

    assert plan.bucket == "sentiment"
    assert plan.model_data_url == "s3://sentiment/Sentiment/model.tar.gz"
    assert plan.output_path == "s3://sentiment/Sentiment/output"
    assert plan.failure_path == "s3://sentiment/Sentiment/failure"
    assert plan.image.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:")
    assert plan.async_config() == {
        "OutputConfig": {"S3OutputPath": plan.output_path, "S3FailurePath": plan.failure_path}
    }


def test_upload_files_and_locations(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_text("1")
    (tmp_path / ".hidden").write_text("")

    assert [p.relative_to(tmp_path).as_posix() for p in input_files(tmp_path)] == [
        "b.json",
        "sub/a.csv",
    ]
    assert location_for("s3://bkt/in/", "sub/a.csv") == "s3://bkt/in/sub/a.csv"
    assert location_for("s3://bkt/in", "a") == "s3://bkt/in/a"
    assert location_for("s3://bkt", "a") == "s3://bkt/a"
    assert split_s3_uri("s3://bkt/k/e/y") == ("bkt", "k/e/y")
    with pytest.raises(InvalidInput):
        split_s3_uri("https://bkt/k")
