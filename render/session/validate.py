"""Validate a parsed session against its JSON Schema and word every error for a person.

The schema (Draft 2020-12) is the contract. Two extensions make it understand engineer's
units: the keyword ``x-quantity: <kind>`` parses a value with ``units.parse``, and the bound
keywords (``minimum`` ...) compare the *parsed* value when the schema names a quantity, so
``threshold: "+3 dB"`` fails ``maximum: 0`` exactly as ``threshold: 3`` does.
"""

from __future__ import annotations

import difflib
import json
import operator
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from render.errors import Diagnostic
from render.session import units
from render.session.yaml_source import KeyPath, YamlDocument

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped with the package (``schemas/`` in the repository)."""
    return json.loads(resources.files("render").joinpath("schemas", name).read_text("utf-8"))


SCHEMAS = ("session.schema.json", "album.schema.json")
"""The schemas that refer to each other (an album's deliverables and target are a session's)."""


@cache
def _registry() -> Registry:
    schemas = [load_schema(name) for name in SCHEMAS]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )


def describe(value: Any) -> str:
    """A value as the user wrote it, for "got ..." in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def did_you_mean(word: str, options: list[str]) -> str | None:
    """``did you mean "release"?`` when ``word`` is a near miss of one of ``options``."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else None


def _x_quantity(validator: Validator, kind: str, instance: Any, schema: dict) -> Iterator:
    if isinstance(instance, str | int | float) and not isinstance(instance, bool):
        try:
            units.parse(kind, instance)
        except units.UnitError as e:
            yield ValidationError(f"expected {e}, got {describe(instance)}")


def _bound(symbol: str, holds: Callable[[float, float], bool]) -> Callable:
    """A replacement for a bound keyword that also applies to values with units."""

    def check(validator: Validator, bound: float, instance: Any, schema: dict) -> Iterator:
        kind = schema.get("x-quantity")
        value: Any = instance
        if kind is not None:
            try:
                value = units.parse(kind, instance)
            except units.UnitError:
                return  # reported by x-quantity
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if not holds(value, bound):
            quantity = units.QUANTITIES.get(kind) if kind else None
            noun = quantity.noun if quantity else "a number"
            unit = f" {quantity.unit}" if quantity and quantity.unit else ""
            yield ValidationError(
                f"expected {noun} {symbol} {bound:g}{unit}, got {describe(instance)}"
            )

    return check


SessionValidator = validators.extend(
    Draft202012Validator,
    {
        "x-quantity": _x_quantity,
        "minimum": _bound(">=", operator.ge),
        "maximum": _bound("<=", operator.le),
        "exclusiveMinimum": _bound(">", operator.gt),
        "exclusiveMaximum": _bound("<", operator.lt),
    },
)


def validate(document: YamlDocument, schema_name: str) -> list[Diagnostic]:
    """Every schema violation in ``document``, each located and worded for a person."""
    validator = SessionValidator(load_schema(schema_name), registry=_registry())
    found: dict[tuple[str, int | None, int | None, str], Diagnostic] = {}
    for error in validator.iter_errors(document.data):
        for diagnostic in _explain(error, document):
            found.setdefault(
                (diagnostic.key_path, diagnostic.line, diagnostic.column, diagnostic.message),
                diagnostic,
            )
    return list(found.values())


def _explain(error: ValidationError, document: YamlDocument) -> list[Diagnostic]:
    path: KeyPath = tuple(error.absolute_path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance

    if "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        return [
            document.diagnostic(
                (*path, instance),
                f"the name {describe(instance)} is not allowed; expected a name of at most 64 "
                "letters, digits, spaces, '_', '.' or '-', starting with a letter or digit",
                of_key=True,
            )
        ]
    if keyword == "additionalProperties" and error.validator_value is False:
        known = sorted(schema.get("properties", {}))
        extras = [k for k in instance if k not in schema.get("properties", {})]
        return [
            document.diagnostic(
                (*path, extra),
                f"unknown key {describe(extra)}; expected one of: {', '.join(known)}",
                hint=did_you_mean(extra, known),
                of_key=True,
            )
            for extra in extras
        ]
    if keyword == "required":
        missing = [name for name in error.validator_value if name not in instance]
        return [
            document.diagnostic(
                path,
                f"missing required key {describe(name)}",
                of_key=bool(path) and isinstance(path[-1], str),  # a list item has no key
            )
            for name in missing
        ]
    if keyword == "oneOf":
        return _explain_one_of(error, document)
    return [document.diagnostic(path, _message(keyword, error, schema, instance))]


def _message(keyword: str, error: ValidationError, schema: dict, instance: Any) -> str:
    got = describe(instance)
    quantity = units.QUANTITIES.get(schema.get("x-quantity", ""))
    if keyword == "type" and quantity:
        return f"expected {quantity.expected}, got {got}"
    if keyword == "type":
        types = error.validator_value
        names = [_TYPE_NAMES[t] for t in ([types] if isinstance(types, str) else types)]
        return f"expected {' or '.join(names)}, got {got}"
    if keyword == "enum":
        options = [describe(option) for option in error.validator_value]
        message = f"expected one of {', '.join(options)}, got {got}"
        if isinstance(instance, str):
            hint = did_you_mean(instance, [str(o) for o in error.validator_value])
            message += f"; {hint}" if hint else ""
        return message
    if keyword == "const":
        return f"expected {describe(error.validator_value)}, got {got}"
    if keyword in ("minProperties", "maxProperties") and schema.get("maxProperties") == 1:
        names = ", ".join(schema.get("properties", {}))
        written = ", ".join(instance) or "nothing"
        return (
            f"expected exactly one of: {names}; got {written}. "
            "Write each effect as its own list item"
        )
    if keyword == "minProperties":
        return f"expected at least {error.validator_value} entries, got {len(instance)}"
    if keyword == "minItems":
        return f"expected at least {error.validator_value} items, got {len(instance)}"
    if keyword == "maxItems":
        return f"expected at most {error.validator_value} items, got {len(instance)}"
    if keyword == "maxLength":
        return f"expected at most {error.validator_value} characters, got {len(instance)}"
    if keyword == "pattern":
        return f"expected {schema.get('x-expected', 'a plain file name (no folders)')}, got {got}"
    return error.message


def _explain_one_of(error: ValidationError, document: YamlDocument) -> list[Diagnostic]:
    """Report the alternative the user evidently meant: the one whose type matches."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    alternatives = error.validator_value
    fitting = [
        index
        for index in range(len(alternatives))
        if not any(
            sub.validator == "type" and not sub.relative_path for sub in branches.get(index, [])
        )
    ]
    if len(fitting) == 1 and branches.get(fitting[0]):
        return [d for sub in branches[fitting[0]] for d in _explain(sub, document)]
    expected = " or ".join(_expected(alternative) for alternative in alternatives)
    path: KeyPath = tuple(error.absolute_path)
    return [document.diagnostic(path, f"expected {expected}, got {describe(error.instance)}")]


def _expected(schema: dict) -> str:
    if "$ref" in schema:
        schema = load_schema("session.schema.json")["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if quantity := units.QUANTITIES.get(schema.get("x-quantity", "")):
        return quantity.expected
    if schema.get("type") == "object":
        return f"a mapping with keys {', '.join(schema.get('properties', {}))}"
    if schema.get("type") == "array":
        return "a list"
    return "a valid value"
