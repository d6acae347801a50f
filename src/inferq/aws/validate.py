"""Server-side validation of parsed inputs against botocore's shapes, with AWS's messages.

Clients validate almost nothing (botocore checks types and ``min`` only), so every ``max``,
pattern and enum is enforced here. Each operation's input shape is compiled once, at import,
into nested closures; a valid request costs a few dict lookups and comparisons per member.

Messages follow Coral (the framework behind AWS's JSON services)::

    2 validation errors detected: Value 'x' at 'inferenceId' failed to satisfy constraint: ...;
    Value null at 'endpointName' failed to satisfy constraint: Member must not be null

Decisions where AWS's behaviour is not public:

* Paths use lowerCamel member names joined by dots; list elements are ``<list>.<n>.member``
  (1-based), so a variant's name is ``productionVariants.1.member.variantName``. Map values are
  ``<map>.<key>``; a bad map key is reported at ``<map>`` with the key as the value.
* Sensitive members (botocore's ``sensitive`` flag, plus container environment values) are
  never echoed: ``Value at 'customAttributes' failed to satisfy ...``, the form AWS uses for the
  sensitive InvokeEndpointAsync body.
* Unknown members are ignored and ``null`` counts as absent, as in AWS's JSON protocols.
* A value of the wrong JSON type raises ``type_error`` (json 1.1 answers
  ``SerializationException`` there) instead of a validation error.
* Patterns are Java regexes (botocore's models come from Coral); ``inferq.aws.javaregex``
  translates them and they must match the whole value, like Java's ``String.matches``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from inferq.aws._shapes import control, runtime
from inferq.aws.errors import AwsError
from inferq.aws.javaregex import java_regex

Check = Callable[[Any, str, list[str]], None]
Shapes = Mapping[str, Mapping[str, Any]]

#: shapes whose values may hold secrets although botocore does not flag them
ALSO_SENSITIVE = frozenset({"EnvironmentValue"})

_SHAPES: dict[str, Shapes] = {"runtime": runtime.SHAPES, "control": control.SHAPES}
_OPERATIONS: dict[str, Mapping[str, Mapping[str, Any]]] = {
    "runtime": runtime.OPERATIONS,
    "control": control.OPERATIONS,
}


# --- messages ------------------------------------------------------------------------------


class _TypeMismatch(str):
    """A violation that is a wrong JSON type rather than a broken constraint."""


def _java_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    return str(value)


def _violation(value: Any, path: str, constraint: str, sensitive: bool) -> str:
    shown = "Value" if sensitive else f"Value '{_java_text(value)}'"
    return f"{shown} at '{path}' failed to satisfy constraint: {constraint}"


def _type_mismatch(value: Any, path: str, expected: str) -> _TypeMismatch:
    found = type(value).__name__
    return _TypeMismatch(f"Expected {expected} at '{path}' but found {found}.")


def message(violations: list[str]) -> str:
    """The Coral summary: ``N validation error(s) detected: a; b``."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(violations)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


# --- compiled checks -----------------------------------------------------------------------

_INTEGRAL = frozenset({int})
_REAL = frozenset({int, float})
_TIMESTAMP = frozenset({int, float, datetime.datetime})
_BLOB = frozenset({bytes, bytearray, memoryview, str})
_NO_LIMIT = float("inf")
#: a pattern so common on hot headers that it earns a shortcut past the regex engine
_FAST_MATCHERS: dict[str, Callable[[str], bool]] = {r"\p{ASCII}*": str.isascii}


class InputValidator:
    """One compiled shape; call it with a parsed input to raise on any violation."""

    __slots__ = ("_check",)

    def __init__(self, check: Check) -> None:
        self._check = check

    def violations(self, params: Any) -> list[str]:
        found: list[str] = []
        self._check(params, "", found)
        return found

    def __call__(
        self, params: Any, error: type[AwsError], type_error: type[AwsError] | None = None
    ) -> None:
        found: list[str] = []
        self._check(params, "", found)
        if found:
            raise _failure(found, error, type_error)


def _failure(
    found: list[str], error: type[AwsError], type_error: type[AwsError] | None
) -> AwsError:
    mismatches = [v for v in found if type(v) is _TypeMismatch]
    if mismatches:
        return (type_error or error)(mismatches[0])
    return error(message(found))


class _Compiler:
    def __init__(self, shapes: Shapes) -> None:
        self._shapes = shapes
        self._checks: dict[str, Check] = {}

    def check(self, name: str) -> Check:
        found = self._checks.get(name)
        if found is None:
            late: list[Check] = []
            # a shape that contains itself sees this stand-in until it is built
            self._checks[name] = lambda value, path, out: late[0](value, path, out)
            found = self._build(name)
            late.append(found)
            self._checks[name] = found
        return found

    def _build(self, name: str) -> Check:
        shape = self._shapes[name]
        sensitive = bool(shape.get("sensitive")) or name in ALSO_SENSITIVE
        kind = shape["type"]
        if kind == "structure":
            return self._structure(shape)
        if kind == "list":
            return self._list(shape, sensitive)
        if kind == "map":
            return self._map(shape, sensitive)
        if kind == "string":
            return _string(shape, sensitive)
        if kind in ("integer", "long"):
            return _number(shape, _INTEGRAL, kind, sensitive)
        if kind in ("float", "double"):
            return _number(shape, _REAL, kind, sensitive)
        if kind == "blob":
            return _sized(shape, _BLOB, "blob", sensitive)
        return _typed(_TIMESTAMP if kind == "timestamp" else frozenset({bool}), kind)

    def _structure(self, shape: Mapping[str, Any]) -> Check:
        members = {
            name: (_camel(name), self.check(ref["shape"]))
            for name, ref in shape.get("members", {}).items()
        }
        required = tuple((name, _camel(name)) for name in shape.get("required", ()))

        def check(value: Any, path: str, out: list[str]) -> None:
            if type(value) is not dict:
                out.append(_type_mismatch(value, path, "structure"))
                return
            prefix = f"{path}." if path else ""
            for name, camel in required:
                if value.get(name) is None:
                    out.append(
                        f"Value null at '{prefix}{camel}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
            for key, item in value.items():
                member = members.get(key)
                if member is not None and item is not None:
                    member[1](item, prefix + member[0], out)

        return check

    def _list(self, shape: Mapping[str, Any], sensitive: bool) -> Check:
        sized = _sized(shape, frozenset({list, tuple}), "list", sensitive)
        item_check = self.check(shape["member"])

        def check(value: Any, path: str, out: list[str]) -> None:
            sized(value, path, out)
            if type(value) in (list, tuple):
                for index, item in enumerate(value, 1):
                    if item is not None:
                        item_check(item, f"{path}.{index}.member", out)

        return check

    def _map(self, shape: Mapping[str, Any], sensitive: bool) -> Check:
        sized = _sized(shape, frozenset({dict}), "map", sensitive)
        key_check, value_check = self.check(shape["key"]), self.check(shape["value"])

        def check(value: Any, path: str, out: list[str]) -> None:
            sized(value, path, out)
            if type(value) is dict:
                for key, item in value.items():
                    key_check(key, path, out)
                    if item is not None:
                        value_check(item, f"{path}.{key}", out)

        return check


def _typed(types: frozenset[type], expected: str) -> Check:
    def check(value: Any, path: str, out: list[str]) -> None:
        if type(value) not in types:
            out.append(_type_mismatch(value, path, expected))

    return check


def _length_violations(
    shape: Mapping[str, Any], value: Any, path: str, sensitive: bool
) -> list[str]:
    size, found = len(value), []
    if size < shape.get("min", 0):
        constraint = f"Member must have length greater than or equal to {shape['min']}"
        found.append(_violation(value, path, constraint, sensitive))
    if size > shape.get("max", _NO_LIMIT):
        constraint = f"Member must have length less than or equal to {shape['max']}"
        found.append(_violation(value, path, constraint, sensitive))
    return found


def _sized(
    shape: Mapping[str, Any], types: frozenset[type], expected: str, sensitive: bool
) -> Check:
    low, high = shape.get("min", 0), shape.get("max", _NO_LIMIT)

    def check(value: Any, path: str, out: list[str]) -> None:
        if type(value) not in types:
            out.append(_type_mismatch(value, path, expected))
        elif not low <= len(value) <= high:
            out += _length_violations(shape, value, path, sensitive)

    return check


def _string(shape: Mapping[str, Any], sensitive: bool) -> Check:
    low, high = shape.get("min", 0), shape.get("max", _NO_LIMIT)
    matches = _matcher(shape["pattern"]) if "pattern" in shape else None
    allowed = frozenset(shape["enum"]) if "enum" in shape else None

    def check(value: Any, path: str, out: list[str]) -> None:
        if type(value) is not str:
            out.append(_type_mismatch(value, path, "string"))
        elif not (
            low <= len(value) <= high
            and (matches is None or matches(value))
            and (allowed is None or value in allowed)
        ):
            out += _length_violations(shape, value, path, sensitive)
            if matches is not None and not matches(value):
                constraint = f"Member must satisfy regular expression pattern: {shape['pattern']}"
                out.append(_violation(value, path, constraint, sensitive))
            if allowed is not None and value not in allowed:
                constraint = f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]"
                out.append(_violation(value, path, constraint, sensitive))

    return check


def _matcher(pattern: str) -> Callable[[str], object]:
    """A truthy result means the whole value matches."""
    return _FAST_MATCHERS.get(pattern) or java_regex(pattern).fullmatch


def _number(
    shape: Mapping[str, Any], types: frozenset[type], expected: str, sensitive: bool
) -> Check:
    low, high = shape.get("min", -_NO_LIMIT), shape.get("max", _NO_LIMIT)

    def check(value: Any, path: str, out: list[str]) -> None:
        if type(value) not in types:
            out.append(_type_mismatch(value, path, expected))
        elif value < low:
            constraint = f"Member must have value greater than or equal to {shape['min']}"
            out.append(_violation(value, path, constraint, sensitive))
        elif value > high:
            constraint = f"Member must have value less than or equal to {shape['max']}"
            out.append(_violation(value, path, constraint, sensitive))

    return check


# --- entry points --------------------------------------------------------------------------


def compile_shape(shapes: Shapes, name: str) -> InputValidator:
    """Compile any shape of a generated ``SHAPES`` table."""
    return InputValidator(_Compiler(shapes).check(name))


def _compile_inputs(service: str) -> dict[str, InputValidator]:
    compiler = _Compiler(_SHAPES[service])
    return {
        operation: InputValidator(compiler.check(entry["input"]))
        for operation, entry in _OPERATIONS[service].items()
        if "input" in entry
    }


#: service ("runtime" or "control") -> operation -> its compiled input shape
INPUTS: dict[str, dict[str, InputValidator]] = {s: _compile_inputs(s) for s in _SHAPES}


def validate_input(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    error: type[AwsError],
    type_error: type[AwsError] | None = None,
) -> None:
    """Raise ``error`` listing every broken constraint of ``operation``'s input shape, or
    ``type_error`` (default: ``error``) when a member has the wrong type."""
    INPUTS[service][operation](params, error, type_error)
