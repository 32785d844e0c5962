"""A small PromQL reader for the charts' alert rules (no promtool package exists in the registries): checks
brackets and selectors, and returns the metrics each expression selects and the labels it groups or filters
by, so tests can hold them against the metrics the app and Fluent Bit really export."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)(?![A-Za-z_])
      | (?P<duration>\[[0-9]+(?:ms|s|m|h|d|w|y)(?::[0-9]*(?:ms|s|m|h|d|w|y)?)?\])
      | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=(){},])
    )""",
    re.VERBOSE,
)
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "group"}
FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "absent",
    "absent_over_time",
    "changes",
    "resets",
    "histogram_quantile",
    "clamp_max",
    "clamp_min",
    "abs",
    "ceil",
    "floor",
    "round",
    "time",
    "vector",
    "scalar",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "label_replace",
    "label_join",
    "predict_linear",
    "sort",
    "sort_desc",
    "timestamp",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


class PromQLError(ValueError):
    pass


@dataclass
class Expression:
    metrics: dict[str, set[str]] = field(default_factory=dict)  # metric -> label names its selector matches on
    grouping: set[str] = field(default_factory=set)  # labels in by (...) / on (...)
    functions: set[str] = field(default_factory=set)


def parse(text: str) -> Expression:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise PromQLError(f"unexpected text at {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    result = Expression()
    depth = 0
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if value == "(":
            depth += 1
        elif value == ")":
            depth -= 1
            if depth < 0:
                raise PromQLError("unbalanced ')'")
        elif kind == "ident" and value in ("by", "without", "on", "ignoring"):
            index, labels = _label_list(tokens, index + 1)
            result.grouping |= labels
            continue
        elif kind == "ident" and (value in AGGREGATIONS or value in FUNCTIONS):
            if following != "(" and following not in ("by", "without"):
                raise PromQLError(f"{value} must be called")
            result.functions.add(value)
        elif kind == "ident" and value in KEYWORDS:
            pass
        elif kind == "ident":
            if following == "(":
                raise PromQLError(f"unknown function {value}")
            index, labels = _selector(tokens, index + 1)
            result.metrics.setdefault(value, set()).update(labels)
            continue
        elif value in ("{", "}"):
            raise PromQLError("a label matcher outside a selector")
        index += 1
    if depth:
        raise PromQLError("unbalanced '('")
    if not result.metrics:
        raise PromQLError("no metric selected")
    return result


def _label_list(tokens: list[tuple[str, str]], index: int) -> tuple[int, set[str]]:
    if index >= len(tokens) or tokens[index][1] != "(":
        raise PromQLError("by/on needs a label list")
    labels: set[str] = set()
    index += 1
    while tokens[index][1] != ")":
        kind, value = tokens[index]
        if kind == "ident":
            labels.add(value)
        elif value != ",":
            raise PromQLError(f"bad label list near {value!r}")
        index += 1
    return index + 1, labels


def _selector(tokens: list[tuple[str, str]], index: int) -> tuple[int, set[str]]:
    labels: set[str] = set()
    if index < len(tokens) and tokens[index][1] == "{":
        index += 1
        while tokens[index][1] != "}":
            name, operator, value = tokens[index : index + 3]
            if name[0] != "ident" or operator[1] not in ("=", "!=", "=~", "!~") or value[0] != "string":
                raise PromQLError(f"bad label matcher near {name[1]!r}")
            labels.add(name[1])
            index += 3
            if tokens[index][1] == ",":
                index += 1
        index += 1
    if index < len(tokens) and tokens[index][0] == "duration":
        index += 1
    return index, labels
