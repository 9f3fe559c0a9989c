"""The schema is the contract: it must be a valid schema, and agree with units and the model.

Each check collects every problem before asserting, so one run lists them all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator

from render.session import model, units
from render.session.validate import SessionValidator, load_schema

SCHEMA: dict[str, Any] = load_schema("session.schema.json")
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# Keywords whose values are data, not schemas: an example mapping is not a sub-schema.
DATA_KEYWORDS = frozenset({"examples", "default", "const", "enum", "required", "description"})
# Keywords whose values map names to schemas: the mapping itself is not a sub-schema.
NAMED_SCHEMAS = frozenset({"properties", "$defs", "patternProperties", "dependentSchemas"})

# Model class -> its object schema, as a path under $defs ("a/properties/b" for inline ones).
SCHEMA_OBJECTS: dict[type, str] = {
    model.Eq: "eq",
    model.Compressor: "compressor",
    model.Gate: "gate",
    model.Limiter: "limiter",
    model.Reverb: "reverb",
    model.Delay: "delay",
    model.Saturation: "saturation",
    model.Width: "width",
    model.Gain: "gain",
    model.Multiband: "multiband",
    model.Track: "track",
    model.Bus: "bus",
    model.MixBus: "mix_bus",
    model.Fade: "fade",
    model.Trim: "trim",
    model.Send: "send",
    model.Deliverable: "deliverable",
    model.Target: "target",
    model.Mastering: "mastering",
    model.Output: "output",
    model.PassFilter: "pass_filter",
    model.EqBand: "eq_band",
    model.MultibandBand: "multiband_band",
    model.GainPoint: "gain_point",
    model.PanPoint: "pan_point",
    model.Automation: "automation",
    model.LoudnessRange: "target/properties/lra",
}


def subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema of ``node`` with its JSON pointer, the root included."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from subschemas(item, f"{path}/{index}")
        return
    if not isinstance(node, dict):
        return
    yield path, node
    for keyword, value in node.items():
        if keyword in DATA_KEYWORDS:
            continue
        if keyword in NAMED_SCHEMAS:
            for name, schema in value.items():
                yield from subschemas(schema, f"{path}/{keyword}/{name}")
        else:
            yield from subschemas(value, f"{path}/{keyword}")


def object_schema(pointer: str) -> dict[str, Any]:
    """The object schema at ``pointer`` under $defs; for shorthand ``oneOf``s, the object branch."""
    node: dict[str, Any] = SCHEMA["$defs"]
    for part in pointer.split("/"):
        node = node[part]
    if "oneOf" in node:
        node = next(branch for branch in node["oneOf"] if branch.get("type") == "object")
    return node


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    """Editors and other tools read the schema directly; it must be well formed."""
    Draft202012Validator.check_schema(SCHEMA)


def test_walker_sees_the_whole_schema() -> None:
    """Guards the other checks: a walker that skipped $defs or oneOf would pass vacuously."""
    paths = {path for path, _ in subschemas(SCHEMA)}
    assert {"#", "#/$defs/pan", "#/$defs/fade/oneOf/1/properties/length"} <= paths
    assert "#/$defs/target/properties/lra/properties/min" in paths


def test_every_x_quantity_is_a_known_kind() -> None:
    """An unknown kind would make ``units.parse`` raise KeyError while validating."""
    unknown = [
        (path, schema["x-quantity"])
        for path, schema in subschemas(SCHEMA)
        if "x-quantity" in schema and schema["x-quantity"] not in units.QUANTITIES
    ]
    assert unknown == []


def test_bounds_apply_to_parsed_values() -> None:
    """A bound compares parsed values only beside ``x-quantity`` in the same sub-schema;
    elsewhere it would silently ignore a unit string such as "+3 dB"."""
    loose = []
    for path, schema in subschemas(SCHEMA):
        if not any(bound in schema for bound in BOUNDS) or "x-quantity" in schema:
            continue
        types = schema.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" in types or not {"number", "integer"} & set(types):
            loose.append((path, types))
    assert loose == []


def test_every_example_is_valid() -> None:
    """Examples are documentation; each must pass the renderer's own validator."""
    failures = []
    for path, schema in subschemas(SCHEMA):
        if "examples" not in schema:
            continue
        validator = SessionValidator({**schema, "$defs": SCHEMA["$defs"]})
        for index, example in enumerate(schema["examples"]):
            for error in validator.iter_errors(example):
                failures.append(f"{path}/examples/{index} {example!r}: {error.message}")
    assert failures == []


def test_effect_vocabulary_matches_the_model() -> None:
    """An effect in the schema but not in EFFECTS validates and then cannot be built."""
    assert set(SCHEMA["$defs"]["effect"]["properties"]) == set(model.EFFECTS)
    assert set(model.EFFECTS.values()) <= set(SCHEMA_OBJECTS)


def test_model_keys_exist_in_the_schema() -> None:
    """A model key missing from the schema can never be set: additionalProperties is false."""
    missing = [
        (cls.__name__, pointer, field.metadata["key"])
        for cls, pointer in SCHEMA_OBJECTS.items()
        for field in dataclasses.fields(cls)
        if "key" in field.metadata
        and field.metadata["key"] not in object_schema(pointer).get("properties", {})
    ]
    assert missing == []


def expected_default(field: dataclasses.Field[Any], schema_default: Any) -> Any:
    """The schema's default in the model's unit, or MISSING if out of this check's scope."""
    kind = field.metadata.get("kind")
    if kind in units.QUANTITIES and isinstance(schema_default, int | float | str):
        return units.parse(kind, schema_default)
    if isinstance(schema_default, int | float) and not isinstance(schema_default, bool):
        return schema_default
    return dataclasses.MISSING  # booleans and enum strings: not numbers or unit strings


def test_documented_defaults_match_the_model() -> None:
    """The schema documents each default; the model applies it. They must be the same."""
    mismatches = []
    for cls, pointer in SCHEMA_OBJECTS.items():
        properties = object_schema(pointer).get("properties", {})
        for field in dataclasses.fields(cls):
            declared = properties.get(field.metadata.get("key"), {})
            unset = field.default is None or field.default is dataclasses.MISSING  # or a factory
            if "default" not in declared or unset:
                continue
            expected = expected_default(field, declared["default"])
            if expected is not dataclasses.MISSING and expected != field.default:
                mismatches.append(
                    f"{cls.__name__}.{field.name}: schema $defs/{pointer} "
                    f"{field.metadata['key']!r} default {declared['default']!r} "
                    f"(= {expected!r}), model default {field.default!r}"
                )
    assert mismatches == []


def test_presets_in_the_schema_are_the_engine_presets() -> None:
    """Every preset the schema offers has engine values, and the schema's description (the
    user's documentation, with its sources) states exactly those values."""
    preset = SCHEMA["$defs"]["target"]["properties"]["preset"]
    assert preset["enum"] == list(model.LOUDNESS_PRESETS)
    for name, (loudness_lufs, true_peak_dbtp) in model.LOUDNESS_PRESETS.items():
        written = rf"{name} (-[\d.]+) (?:LUFS|LKFS), (-[\d.]+) dBTP"
        stated = re.search(written, preset["description"])
        assert stated, f"the description gives no values for {name}"
        assert (float(stated[1]), float(stated[2])) == (loudness_lufs, true_peak_dbtp), name


def test_explicit_target_values_override_the_preset() -> None:
    target = model.Target(preset="amazon", loudness_lufs=-12.0)
    assert (target.integrated_lufs, target.ceiling_dbtp) == (-12.0, -2.0)
    assert (model.Target().integrated_lufs, model.Target().ceiling_dbtp) == (None, None)
