"""Which function serves each step: the user module's own, or the framework's default.

As in the inference toolkit, a user module defines ``model_fn`` and either ``transform_fn`` or
any of ``input_fn``/``predict_fn``/``output_fn`` (plus optional ``pre_model_fn`` and
``model_warmup_fn``); each may take one extra trailing ``context`` argument, detected by counting
its parameters. Unlike the toolkit, every gap is reported at load time rather than per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from inferq.modelserver.context import Context
from inferq.modelserver.errors import StartupError

#: each handler's arguments, without the optional trailing ``context``
PARAMETERS: dict[str, tuple[str, ...]] = {
    "pre_model_fn": ("model_dir",),
    "model_fn": ("model_dir",),
    "model_warmup_fn": ("model_dir", "model"),
    "input_fn": ("input_data", "content_type"),
    "predict_fn": ("data", "model"),
    "output_fn": ("prediction", "accept"),
    "transform_fn": ("model", "input_data", "content_type", "accept"),
}

_STEP_NAMES = ("input_fn", "predict_fn", "output_fn")
_OPTIONAL_NAMES = ("transform_fn", "pre_model_fn", "model_warmup_fn")


class IncompatibleHandlersError(StartupError, ValueError):
    """``transform_fn`` defined together with ``input_fn``, ``predict_fn`` or ``output_fn``."""


@dataclass(frozen=True, slots=True)
class Handler:
    """A function serving one step, and whether it wants the context appended."""

    name: str
    func: Callable[..., Any]
    takes_context: bool
    origin: str

    def call(self, *args: Any, context: Context | None) -> Any:
        if self.takes_context:
            return self.func(*args, context)
        return self.func(*args)


@dataclass(frozen=True, slots=True)
class Defaults:
    """A framework's default handlers; None where it has none."""

    label: str
    model_fn: Callable[..., Any] | None
    input_fn: Callable[..., Any]
    predict_fn: Callable[..., Any] | None
    output_fn: Callable[..., Any]
    #: what to do when model_fn is missing and there is no default
    model_fn_hint: str = "define model_fn(model_dir)"


@dataclass(frozen=True, slots=True)
class HandlerSet:
    """The resolved handlers; ``transform_fn`` set means the three steps are unused."""

    model_fn: Handler
    input_fn: Handler
    predict_fn: Handler
    output_fn: Handler
    transform_fn: Handler | None = None
    pre_model_fn: Handler | None = None
    model_warmup_fn: Handler | None = None


def bind(name: str, func: Callable[..., Any], origin: str) -> Handler:
    """Wrap ``func`` as the handler ``name``, deciding by its arity whether it takes context."""
    expected = len(PARAMETERS[name])
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # a callable without an introspectable signature
        return Handler(name, func, takes_context=False, origin=origin)
    if len(parameters) in (expected, expected + 1):
        return Handler(name, func, takes_context=len(parameters) == expected + 1, origin=origin)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return Handler(name, func, takes_context=False, origin=origin)
    arguments = ", ".join(PARAMETERS[name])
    raise StartupError(
        f"{name} in {origin} takes {len(parameters)} arguments; it must take "
        f"{expected} ({arguments}) or {expected + 1} ({arguments}, context)"
    )


def user_functions(module: ModuleType | None, origin: str) -> dict[str, Callable[..., Any]]:
    """The handler functions ``module`` defines."""
    found: dict[str, Callable[..., Any]] = {}
    for name in PARAMETERS:
        value = getattr(module, name, None) if module is not None else None
        if value is None:
            continue
        if not callable(value):
            raise StartupError(f"{name} in {origin} is a {type(value).__name__}, not a function")
        found[name] = value
    return found


def resolve(module: ModuleType | None, origin: str, defaults: Defaults) -> HandlerSet:
    """Pick each step's handler from ``module`` (named ``origin`` in messages) or ``defaults``."""
    user = user_functions(module, origin)
    _check_complete(user, origin, defaults)

    def pick(name: str, default: Callable[..., Any] | None) -> Handler:
        if name in user:
            return bind(name, user[name], origin)
        return bind(name, default or _replaced_by_transform_fn, defaults.label)

    optional = {name: bind(name, user[name], origin) for name in user if name in _OPTIONAL_NAMES}
    return HandlerSet(
        model_fn=pick("model_fn", defaults.model_fn),
        input_fn=pick("input_fn", defaults.input_fn),
        predict_fn=pick("predict_fn", defaults.predict_fn),
        output_fn=pick("output_fn", defaults.output_fn),
        **optional,
    )


def _check_complete(user: dict[str, Callable[..., Any]], origin: str, defaults: Defaults) -> None:
    steps = [name for name in _STEP_NAMES if name in user]
    if "transform_fn" in user and steps:
        raise IncompatibleHandlersError(
            f"{origin}: Cannot use transform_fn implementation in conjunction with "
            f"{', '.join(steps)} implementation"
        )
    if "model_fn" not in user and defaults.model_fn is None:
        raise StartupError(
            f"No model_fn in {origin}, and {defaults.label} cannot load this model: "
            f"{defaults.model_fn_hint}"
        )
    if "predict_fn" not in user and "transform_fn" not in user and defaults.predict_fn is None:
        raise StartupError(
            f"Neither predict_fn nor transform_fn in {origin}, and {defaults.label} have no "
            "default predict_fn: define predict_fn(data, model) or transform_fn(model, "
            "input_data, content_type, accept)"
        )


def _replaced_by_transform_fn(*args: Any) -> Any:
    raise AssertionError("a step replaced by transform_fn was called")
