"""Configs: the shared keys (base.py), each model's section (its module's CONFIG), checked
against their schema (schema.py) before any work.

  config = jaxvq.get_config("vqvae")         # defaults: shared keys + config.model
  config.model.quantizer.num_codes = 1024    # any key, as --config.model.quantizer.num_codes=1024
  jaxvq.config.check(config)                  # one ConfigError naming every bad key

Config files in configs/ start from `get_config(model)` and change a few keys.
"""
from __future__ import annotations

import copy
import importlib.util
from typing import Mapping

import ml_collections

from jaxvq import compat, registry, schema
from jaxvq.config.base import SHARED
from jaxvq.errors import ConfigError
from jaxvq.models.quantizers.vq import VQ_FIELDS


def get_config(model: str = "vqvae", **variant) -> ml_collections.ConfigDict:
  """The default config of a run of `model`.

  Args:
    model: autoencoder, vae, vqvae or pixelcnn.
    **variant: the model's form, e.g. quantizer="fsq" (vq, fsq, lfq, residual_vq) for the
      VQ-VAE.

  Returns:
    A ConfigDict: the shared keys (jaxvq/config/base.py) and, in `config.model`, the
    model's own section with its defaults.
  """
  config = schema.defaults(SHARED)
  config.model = registry.default_config(model, **variant)
  return config


def section(config: Mapping) -> dict:
  """The schema of a whole config: the shared keys and its model's section."""
  model_config = config["model"]
  cls = registry.model_class(model_config["name"])
  return {**SHARED, "model": cls.config_section(model_config)}


def check(config: Mapping) -> None:
  """Raises ConfigError naming each key that the run does not read or whose value is refused."""
  plain = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config
  problems = schema.problems(section(plain), plain)
  if not problems:   # the keys are sound: how they go together
    problems = registry.model_class(plain["model"]["name"]).config_problems(plain)
  if problems:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise ConfigError("; ".join(problems[:3]) + more)


def load_file(path: str) -> ml_collections.ConfigDict:
  """get_config() of the config file at `path`, or get_config(ARG) for `path:ARG`."""
  path, _, arg = path.partition(":")
  spec = importlib.util.spec_from_file_location("_jaxvq_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


# --------------------------------------------------------------------- saved configs

def migrate(saved: Mapping) -> dict:
  """A config.json of any jaxvq version, in today's form: its keys where they are read now
  (jaxvq/compat.py), keys a run did not read dropped, keys added since at their defaults
  (the behaviour the run had)."""
  saved = compat.upgrade_config(saved, VQ_FIELDS)
  return _overlay(section(saved), saved)


def _overlay(section_schema: Mapping, values: Mapping) -> dict:
  """The section's defaults, with `values` where it has them (other keys dropped)."""
  out = {}
  for key, field in section_schema.items():
    given = values.get(key) if isinstance(values, Mapping) else None
    if isinstance(field, Mapping):
      out[key] = _overlay(field, given if isinstance(given, Mapping) else {})
    else:
      out[key] = field.default if given is None else given
  return out


def resumable_keys(config: Mapping) -> set:
  """Keys a resumed run may change; num_train_steps not when the schedule decays over it."""
  keys = schema.resumable_keys(section(config))
  if config.get("learning_rate_schedule", "constant") != "constant":
    keys.discard("num_train_steps")
  return keys


def differences(saved: Mapping, config: ml_collections.ConfigDict) -> list:
  """'key: saved -> new' for each key besides the resumable ones where `config` differs
  from the (migrated) saved config."""
  new = config.to_dict()
  old, new_flat = schema.flatten(migrate(saved)), schema.flatten(new)
  resumable = resumable_keys(new)
  keys = sorted(set(old) | set(new_flat))
  return [f"{k}: {old.get(k, '(none)')!r} -> {new_flat.get(k, '(none)')!r}"
          for k in keys if k not in resumable and _plain(old.get(k)) != _plain(new_flat.get(k))]


def _plain(value):
  return list(value) if isinstance(value, tuple) else value
