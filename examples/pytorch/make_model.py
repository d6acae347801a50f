"""Build the example's tiny TorchScript classifier and pack it as a SageMaker model.tar.gz.

    python examples/pytorch/make_model.py [--out DIR]

writes DIR/model/model.pt, DIR/model/code/inference.py and DIR/model.tar.gz (default DIR:
build/pytorch-example at the repository root). Needs torch. The model maps 4 inputs through 8
hidden units to 3 class probabilities, with weights from a fixed seed.
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
FEATURES, HIDDEN, CLASSES = 4, 8, 3


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(FEATURES, HIDDEN)
        self.output = nn.Linear(HIDDEN, CLASSES)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.output(torch.relu(self.hidden(features))), dim=-1)


def build(out: Path) -> Path:
    """Write the model dir and its archive under ``out``; returns the archive's path."""
    torch.manual_seed(0)
    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    (model_dir / "code").mkdir(parents=True)
    torch.jit.script(TinyClassifier().eval()).save(str(model_dir / "model.pt"))
    shutil.copy(HERE / "code" / "inference.py", model_dir / "code" / "inference.py")
    archive = out / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parents[1] / "build" / "pytorch-example")
    archive = build(parser.parse_args().out)
    print(f"wrote {archive}")


if __name__ == "__main__":
    main()
