"""What the annotations of a config model say: the layer under :mod:`.yaml_config`'s error
messages and overrides, and the README's table of keys.

:func:`unwrap` reads an annotation as (type, constraints, nullable); :func:`field_below` walks
one key down a model, a mapping, a list or a :func:`one_or_many` union (one mapping or a list
of them); :func:`describe` says what a valid value looks like (``an integer >= 2 or null``;
short, the README's type: ``int >= 2 or null``) from the annotation, ``Optional``,
``Field(ge=, gt=, le=)`` and ``json_schema_extra={"expected": ..., "type": ...}``;
:func:`schema_rows` and :func:`describe_schema` list every key with its type, default and
doc. :func:`show` writes a value as it would read in YAML. Nothing here reads a file or
raises a config error.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, List, NamedTuple, Tuple, Union

import annotated_types
import yaml
from pydantic import Discriminator, Field, Tag

Row = NamedTuple("Row", [("type", str), ("default", Any), ("doc", str)])  # a README row


def show(value: Any) -> str:
    """A value as it would read in YAML, on one short line."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (dict, list, tuple)):
        return ("a " if value else "an empty ") + ("mapping" if isinstance(value, dict) else "list")
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


def _n(x) -> str:
    """A bound as people write it: 1,000,000 for an integer, 1e-08 for a float."""
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def one_or_many(model, doc_many: str):
    """A key that takes one ``model`` mapping or a non-empty list of them (``task:``). Errors
    are located as for either form: ``task.nmae`` or ``task[1].nmae``."""
    return Annotated[Union[Annotated[model, Tag(ONE)],
                           Annotated[List[model], Tag(MANY), Field(min_length=1)]],
                     Discriminator(lambda v: MANY if isinstance(v, (list, tuple)) else ONE),
                     Field(json_schema_extra={"many": doc_many})]


ONE, MANY = "<one>", "<many>"  # union tags: stripped from error locations


def branches(ann):
    """(model, list annotation) of a :func:`one_or_many` union, else None."""
    args = [typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a
            for a in typing.get_args(ann)]
    models = [a for a in args if hasattr(a, "model_fields")]
    lists = [a for a in args if typing.get_origin(a) is list]
    return (models[0], lists[0]) if models and lists else None


def unwrap(ann) -> Tuple[Any, list, bool]:
    """(type, constraints, nullable) of an annotation such as Optional[Annotated[int, ...]]."""
    args, meta = typing.get_args(ann), []
    if typing.get_origin(ann) is Annotated and branches(typing.get_args(ann)[0]):
        ann, args = typing.get_args(ann)[0], ()
    if type(None) in args:
        ann = next(a for a in args if a is not type(None))
    if typing.get_origin(ann) is typing.Annotated:
        ann, *extra = typing.get_args(ann)
        meta = [m for x in extra for m in getattr(x, "metadata", [x])]
    return ann, meta, type(None) in args


def field_below(ann, part):
    """(annotation, FieldInfo or None) of key ``part`` under ``ann`` (a model, a mapping or a
    list of models), or None if there is no such key."""
    ann = unwrap(ann)[0]
    both = branches(ann)
    if both:  # one mapping or a list of them: the key's form tells which
        ann = both[1] if isinstance(part, int) else both[0]
    args, fields = typing.get_args(ann), getattr(ann, "model_fields", None)
    if fields is not None:
        return (fields[part].annotation, fields[part]) if part in fields else None
    if typing.get_origin(ann) is dict:
        return args[1], None
    listed = typing.get_origin(ann) is list or args[-1:] == (...,)
    return (args[0], None) if isinstance(part, int) and listed else None


def describe(ann, meta=(), extra=None, key: str = "", short: bool = False) -> str:
    """What a valid value looks like: ``an integer >= 2 or null`` (short: ``int >= 2 or null``)."""
    ann, more, nullable = unwrap(ann)
    text = (extra or {}).get("type" if short else "expected")
    if text is None and branches(ann):
        model = branches(ann)[0]
        text = "mapping or list" if short else (f"a mapping of {key} keys "
                                                f"({', '.join(model.model_fields)}) or a "
                                                "non-empty list of them")
    elif text is None and typing.get_origin(ann) is typing.Literal:
        text = ("" if short else "one of ") + ", ".join(map(str, typing.get_args(ann)))
    elif text is None and hasattr(ann, "model_fields"):
        text = "mapping" if short else f"a mapping of {key} keys ({', '.join(ann.model_fields)})"
    elif text is None and typing.get_origin(ann) is dict:
        value = describe(typing.get_args(ann)[1], short=True)
        text = "mapping" + (f" name -> {value}" if short and value != "any" else "")
    elif text is None:
        text = {int: "int an integer", float: "float a number", bool: "bool true or false",
                str: "str a non-empty string", list: "list a list", tuple: "list a list"}.get(
            typing.get_origin(ann) or ann, "any a value").split(" ", 1)[not short]
        for m in (*meta, *more):
            if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
                text += f" >= {_n(m.ge)}" if hasattr(m, "ge") else f" > {_n(m.gt)}"
            elif isinstance(m, annotated_types.Le):
                text += (" and" if ">" in text else "") + f" <= {_n(m.le)}"
    return text + (" or null" if nullable else "")


def schema_rows(model, prefix: str = ""):
    """(dotted key, :data:`Row`) for every key of ``model``, sections flattened, in order."""
    for name, f in model.model_fields.items():
        sub = f.annotation if hasattr(f.annotation, "model_fields") else \
            (branches(unwrap(f.annotation)[0]) or (None,))[0]
        if sub is not None:
            yield from schema_rows(sub, prefix + name + ".")
        else:
            yield prefix + name, Row(describe(f.annotation, f.metadata, f.json_schema_extra,
                                              short=True),
                                     f.get_default(call_default_factory=True), f.description)


def describe_schema(model) -> str:
    """The keys of ``model`` as a markdown table: key, type, default, meaning."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, (kind, d, doc) in schema_rows(model):
        if isinstance(d, dict) and d and len(set(d.values())) == 1:  # e.g. mutation weights
            text, doc = f"{show(next(iter(d.values())))} each", f"{doc}; names: {', '.join(d)}"
        else:
            text = yaml.safe_dump(d, default_flow_style=True, width=10 ** 6)  # one row
            text = text.strip().removesuffix("...")
        lines.append(f"| `{key}` | {kind} | `{text.strip()}` | {doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
