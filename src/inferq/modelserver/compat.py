"""A stand-in for the ``sagemaker_inference`` package when the real one is not installed.

Scripts written for the SageMaker framework images often import the toolkit's helpers
(``from sagemaker_inference import content_types, decoder, encoder, errors``). When that
package is absent, those names resolve to this package's equivalents, so the script runs
unchanged; an installed toolkit always wins.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from inferq.modelserver import codecs, content_types, errors

PACKAGE = "sagemaker_inference"

_SUBMODULES: dict[str, ModuleType] = {
    "content_types": content_types,
    "decoder": codecs,
    "encoder": codecs,
    "errors": errors,
}


def install_toolkit_stand_in() -> bool:
    """Register the stand-in unless the real toolkit is importable; True if registered."""
    if PACKAGE in sys.modules or importlib.util.find_spec(PACKAGE) is not None:
        return False
    package = ModuleType(PACKAGE, "inferq's stand-in for the SageMaker inference toolkit")
    package.__path__ = []
    for name, module in _SUBMODULES.items():
        setattr(package, name, module)
        sys.modules[f"{PACKAGE}.{name}"] = module
    sys.modules[PACKAGE] = package
    return True
