"""Typed config sections: each key's default, type, valid values and meaning, in one place.

A section is a dict `name -> Field` (a nested dict is a nested section). From it
come the ConfigDict a config file starts from (`defaults`), the check of a
config before any work (`problems`), and which keys a resumed run may change
(`resumable_keys`). Every jaxvq config is the shared section
(jaxvq/config/base.py) plus the chosen model's (`config.model`, defined next to
the model), so a run's config.json holds exactly the keys it reads.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional

import ml_collections

@dataclasses.dataclass(frozen=True)
class Field:
  """One config key: its default (which also fixes its type) and what values it may take."""
  default: Any
  doc: str
  minimum: Optional[float] = None   # inclusive lower bound
  maximum: Optional[float] = None   # inclusive upper bound
  above: Optional[float] = None     # exclusive lower bound
  below: Optional[float] = None     # exclusive upper bound
  choices: Optional[tuple] = None
  resumable: bool = False  # may change when a run resumes (intervals, sizes of evaluation, ...)
  derived: bool = False    # filled in by jaxvq from the data; a user leaves it at its default

  @property
  def kind(self) -> type:
    return type(self.default)

  def bounds(self) -> str:
    """What the allowed values are, in words."""
    if self.choices is not None:
      return "one of " + ", ".join(repr(c) for c in self.choices)
    parts = []
    if self.minimum is not None:
      parts.append(f">= {self.minimum:g}")
    if self.above is not None:
      parts.append(f"> {self.above:g}")
    if self.maximum is not None:
      parts.append(f"<= {self.maximum:g}")
    if self.below is not None:
      parts.append(f"< {self.below:g}")
    return " and ".join(parts) or f"a {self.kind.__name__}"

  def problem(self, value) -> Optional[str]:
    """Why `value` is not allowed, or None."""
    kind = self.kind
    if kind is tuple:
      if not isinstance(value, (tuple, list)) or not all(
          isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "a list of integers"
      return self._range_problem(value)
    if kind is bool:
      return None if isinstance(value, bool) else "True or False"
    if kind is int:
      if isinstance(value, bool) or not isinstance(value, int):
        return "an integer"
    elif kind is float:
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "a number"
      if not math.isfinite(value):
        return "a finite number"
    elif kind is str and not isinstance(value, str):
      return "a string"
    if self.choices is not None and value not in self.choices:
      return self.bounds()
    return self._range_problem([value]) if kind in (int, float) else None

  def _range_problem(self, values) -> Optional[str]:
    for v in values:
      if ((self.minimum is not None and v < self.minimum) or
          (self.maximum is not None and v > self.maximum) or
          (self.above is not None and v <= self.above) or
          (self.below is not None and v >= self.below)):
        return self.bounds()
    return None


Section = Mapping[str, Any]   # name -> Field, or name -> Section (nested)


def defaults(section: Section) -> ml_collections.ConfigDict:
  """The ConfigDict of a section's defaults."""
  config = ml_collections.ConfigDict()
  for name, field in section.items():
    config[name] = defaults(field) if isinstance(field, Mapping) else field.default
  return config


def flatten(tree: Mapping, prefix: str = "") -> dict:
  """{"model": {"hidden": 64}} -> {"model.hidden": 64}; of a section, every Field by its
  dotted name."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[prefix + key] = value
  return flat


def problems(section: Section, config: Mapping, prefix: str = "") -> list:
  """One line per key of `config` that the section does not have or whose value it refuses."""
  known = flatten(section, prefix)
  found = flatten(config, prefix)
  lines = []
  for key, value in found.items():
    field = known.get(key)
    if field is None:
      lines.append(f"config key {key!r} is not read by this run (see its section in "
                   f"jaxvq/config or the model's module)")
    else:
      why = field.problem(value)
      if why is not None:
        lines.append(f"config.{key}={value!r}: must be {why}")
  for key in known:
    if key not in found:
      lines.append(f"config key {key!r} is missing")
  return lines


def resumable_keys(section: Section, prefix: str = "") -> set:
  return {k for k, f in flatten(section, prefix).items() if f.resumable}
