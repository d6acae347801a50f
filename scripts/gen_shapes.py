"""Write ``src/inferq/aws/_shapes/{runtime,control}.py`` from the installed botocore's models.

Only the operations inferq implements are written, with the transitive closure of their input,
output and error shapes, as plain data (documentation dropped) plus ``TypedDict``s for the
structures. ``tests/unit/test_shapes.py`` regenerates in memory and fails on any drift, so after
upgrading botocore run::

    .venv/bin/python scripts/gen_shapes.py
"""

from __future__ import annotations

import json
import keyword
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import botocore
from botocore.loaders import Loader

OUT_DIR = Path(__file__).resolve().parent.parent / "src" / "inferq" / "aws" / "_shapes"

#: module name -> (botocore service name, the operations we implement)
SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "runtime": ("sagemaker-runtime", ("InvokeEndpointAsync", "InvokeEndpoint")),
    "control": (
        "sagemaker",
        (
            "CreateModel",
            "DescribeModel",
            "ListModels",
            "DeleteModel",
            "CreateEndpointConfig",
            "DescribeEndpointConfig",
            "ListEndpointConfigs",
            "DeleteEndpointConfig",
            "CreateEndpoint",
            "DescribeEndpoint",
            "ListEndpoints",
            "DeleteEndpoint",
            "UpdateEndpoint",
            "UpdateEndpointWeightsAndCapacities",
        ),
    ),
}

#: shape and member keys that carry wire behaviour; everything else (documentation, box, ...) is
#: dropped
SHAPE_KEYS = (
    "type",
    "required",
    "payload",
    "min",
    "max",
    "pattern",
    "enum",
    "sensitive",
    "timestampFormat",
    "member",
    "key",
    "value",
    "error",
    "exception",
    "fault",
)
MEMBER_KEYS = (
    "shape",
    "location",
    "locationName",
    "jsonvalue",
    "timestampFormat",
    "idempotencyToken",
)
METADATA_KEYS = (
    "apiVersion",
    "protocol",
    "jsonVersion",
    "targetPrefix",
    "signingName",
    "endpointPrefix",
    "serviceId",
)

PYTHON_TYPES = {
    "string": "str",
    "integer": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "boolean": "bool",
    "timestamp": "float",
    "blob": "bytes",
}


def load_model(service: str) -> dict[str, Any]:
    model: dict[str, Any] = Loader().load_service_model(service, "service-2")
    return model


def operation_entry(op: dict[str, Any]) -> dict[str, Any]:
    http = op["http"]
    entry: dict[str, Any] = {
        "method": http["method"],
        "requestUri": http["requestUri"],
        "responseCode": http.get("responseCode", 200),
    }
    for key in ("input", "output"):
        if key in op:
            entry[key] = op[key]["shape"]
    entry["errors"] = [e["shape"] for e in op.get("errors", [])]
    return entry


def referenced(shape: dict[str, Any]) -> Iterator[str]:
    for member in shape.get("members", {}).values():
        yield member["shape"]
    for key in ("member", "key", "value"):
        if key in shape:
            yield shape[key]["shape"]


def closure(shapes: dict[str, Any], roots: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(referenced(shapes[name]))
    return sorted(seen)


def trimmed(shape: dict[str, Any]) -> dict[str, Any]:
    out = {k: shape[k] for k in SHAPE_KEYS if k in shape}
    for key in ("member", "key", "value"):
        if key in out:
            out[key] = out[key]["shape"]
    if "members" in shape:
        out["members"] = {
            name: {k: m[k] for k in MEMBER_KEYS if k in m} for name, m in shape["members"].items()
        }
    return out


def literal(value: Any) -> str:
    """A Python literal on one line (``json`` spells str/int/float/list the same way)."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(value)


def shape_lines(name: str, shape: dict[str, Any]) -> list[str]:
    members = shape.pop("members", None)
    if members is None:
        return [f"    {json.dumps(name)}: {literal(shape)},"]
    head = literal(shape)[:-1] + (", " if shape else "")
    lines = [f'    {json.dumps(name)}: {head}"members": {{']
    lines += [f"        {json.dumps(m)}: {literal(v)}," for m, v in members.items()]
    lines.append("    }},")
    return lines


def annotation(shapes: dict[str, Any], name: str) -> str:
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        return name
    if kind == "list":
        return f"list[{annotation(shapes, shape['member']['shape'])}]"
    if kind == "map":
        return f"dict[str, {annotation(shapes, shape['value']['shape'])}]"
    return PYTHON_TYPES[kind]


def typed_dict(shapes: dict[str, Any], name: str) -> list[str]:
    shape = shapes[name]
    lines = ["", "", f"    class {name}(TypedDict, total=False):"]
    required = set(shape.get("required", ()))
    for member, ref in shape["members"].items():
        if keyword.iskeyword(member) or not member.isidentifier():
            raise SystemExit(f"{name}.{member} is not a Python identifier")
        hint = annotation(shapes, ref["shape"])
        lines.append(f"        {member}: " + (f"Required[{hint}]" if member in required else hint))
    if not shape["members"]:
        lines.append("        pass")
    return lines


def header(service: str, metadata: dict[str, Any]) -> list[str]:
    return [
        f"# generated by scripts/gen_shapes.py from botocore {botocore.__version__} — do not edit",
        f'"""{metadata["serviceId"]} ({service} {metadata["apiVersion"]}): the operations inferq '
        'implements and the shapes they use."""',
        "",
        "# fmt: off",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING, Any",
        "",
        f"BOTOCORE_VERSION = {json.dumps(botocore.__version__)}",
        f"METADATA: dict[str, Any] = {literal(metadata)}",
    ]


def render(module: str) -> str:
    service, operations = SERVICES[module]
    model = load_model(service)
    shapes = model["shapes"]
    ops = {name: operation_entry(model["operations"][name]) for name in operations}
    roots = [s for op in ops.values() for s in (op.get("input"), op.get("output"), *op["errors"])]
    names = closure(shapes, [r for r in roots if r])
    metadata = {k: model["metadata"][k] for k in METADATA_KEYS if k in model["metadata"]}
    lines = [*header(service, metadata), "", "OPERATIONS: dict[str, dict[str, Any]] = {"]
    lines += [f"    {json.dumps(n)}: {literal(e)}," for n, e in ops.items()]
    lines += ["}", "", "SHAPES: dict[str, dict[str, Any]] = {"]
    for name in names:
        lines += shape_lines(name, trimmed(shapes[name]))
    lines += [
        "}",
        "",
        "# Types only: evaluating ~300 string annotations would slow every import.",
        "if TYPE_CHECKING:",
        "    from typing import Required, TypedDict",
    ]
    for name in names:
        if shapes[name]["type"] == "structure" and "exception" not in shapes[name]:
            lines += typed_dict(shapes, name)
    return "\n".join(lines) + "\n"


INIT = '''"""Generated from botocore's models by ``scripts/gen_shapes.py``; never edit by hand."""
'''


def generated() -> dict[Path, str]:
    files = {OUT_DIR / f"{module}.py": render(module) for module in SERVICES}
    files[OUT_DIR / "__init__.py"] = INIT
    return files


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in generated().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
