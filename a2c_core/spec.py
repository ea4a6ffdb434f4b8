"""Sweep YAML: load, validate strictly, expand into runs, and compute run ids.

A sweep file names an experiment, fixes some :class:`~a2c_core.config.A2CConfig` fields at
top level, sweeps others under ``grid`` (cartesian product, file order) and lists seeds.
Every problem is reported as one :class:`SpecError` line ``FILE: KEY: what is wrong``.

This module must stay cheap to import: ``a2c-sweep run --dry-run`` loads neither torch nor ray.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from a2c_core.config import (
    FIELD_TYPES,
    LATER_FIELDS,
    OPTIONAL_FLOAT,
    WIDTHS,
    A2CConfig,
    value_text,
    widths_problem,
)

__all__ = [
    "DEFAULT_CHECKPOINT_EVERY_S",
    "SWINGUP_IDS",
    "Execution",
    "Racing",
    "RunSpec",
    "SpecError",
    "Sweep",
    "check_compatible",
    "check_name",
    "experiment_key",
    "load_spec",
    "run_id",
]

DEFAULT_CHECKPOINT_EVERY_S = 60.0
SWINGUP_IDS = ("CartPoleSwingUp-v0", "CartPoleSwingUp-v1")
MAX_SEED = 2**63 - 1  # seeds must fit an int64 tensor (checkpoints hold tensors and ints)

_META_KEYS = ("name", "seeds", "grid", "execution", "racing", "description")
_TOP_KEYS = _META_KEYS + tuple(FIELD_TYPES)
_EXECUTION_KEYS = ("checkpoint_every_s", "num_cpus", "pack_size", "worker_niceness")
_SEED_MAPPING_KEYS = ("count", "start")
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\Z")
_NAME_MAX = 200


class SpecError(Exception):
    """A bad sweep file. ``str(err)`` is one line: ``FILE: KEY: what is wrong``."""


# --------------------------------------------------------------------------- YAML loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` / ``1E5`` / ``.5e-2`` as floats and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) floats need a dot and a signed exponent; YAML 1.2 / JSON do not. The
# standard resolvers run first, so plain ints stay ints; this one only adds exponent forms.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_error_line(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "YAML"
        if isinstance(err, yaml.constructor.ConstructorError):
            tag = re.search(r"for the tag '([^']*)'", str(err.problem))
            if tag:
                name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
                return f"{where}: unsupported YAML tag {name!r} (only plain YAML data is read)"
            return f"{where}: {err.problem}"
        context = str(err.context or "")
        ctx = err.context_mark
        if context and ctx is not None and mark is not None and ctx.line != mark.line:
            context += f" (from line {ctx.line + 1})"
        problem = "; ".join(p for p in (context, str(err.problem or "")) if p)
        return f"{where}: YAML syntax error: {problem}"
    return "YAML: " + " ".join(str(err).split())


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class Execution:
    """How a sweep runs. Never part of a run id."""

    checkpoint_every_s: float = DEFAULT_CHECKPOINT_EVERY_S
    num_cpus: int | None = None
    pack_size: int | None = None
    worker_niceness: int = 0
    """added to the driver's niceness for the embedded Ray's workers (0: the driver's own
    priority; Ray's default would be 15). A cluster's nodes set theirs at `ray start`."""


RACING_STATISTICS = ("iqm", "median", "mean")


@dataclass(frozen=True)
class Racing:
    """Early stopping of whole configurations at rung epochs (``racing:`` in the sweep file;
    runner.racing applies it). Never part of a run id: racing decides which runs go on, not
    what a run computes. docs/design.md "Racing" explains the rule."""

    rungs: tuple[int, ...] = ()
    """the rung epochs, resolved against ``epochs``: increasing, each in 1..epochs-1."""
    window: float = 0.1
    """a seed's score at rung R: mean return_mean over its last w epochs up to R, w = window
    when an integer, else ceil(window x R) (0.1: analyze's final-score rule)."""
    statistic: str = "iqm"
    """of a configuration's per-seed scores: iqm, median or mean."""
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    """the bootstrap's seed: decisions are a function of the rows, the options and this."""
    keep_top: int = 3
    """never stop the best k configurations; the k-th best's lower bound is the bar."""
    threshold: float | None = None
    """also stop a configuration whose upper bound is below this (None: no fixed bar)."""
    min_seeds_done: int = 3
    """a configuration with fewer scored seeds at a rung is neither judged nor a bar."""
    rung_spec: tuple[Any, ...] = (0.1, 0.25)
    """the rungs as written (ints: epochs; floats in (0, 1): fractions of ``epochs``)."""


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    config: A2CConfig
    seed: int
    swept: dict[str, Any]
    """the grid values of this run, keyed by grid key in file order."""


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    fixed: dict[str, Any]
    """A2CConfig fields set at top level (ints widened to float for float fields)."""
    grid: dict[str, list[Any]]
    """swept fields in file order, each with its values in file order."""
    seeds: Sequence[int]
    """a list, or a range for ``{count: N, start: S}`` (never built, however large)."""
    execution: Execution
    raw: dict[str, Any]
    """the mapping as loaded from YAML."""
    description: str | None = None
    text: str = field(default="", repr=False)
    racing: Racing | None = None
    """early stopping of configurations (None: every run trains all its epochs)."""
    """the file's text as launched (written verbatim to results/<name>/sweep.yaml)."""

    def iter_configs(self) -> Iterator[tuple[dict[str, Any], A2CConfig]]:
        """(swept values, config) for each grid point, in product order (no seeds), lazily."""
        keys = list(self.grid)
        for values in itertools.product(*(self.grid[k] for k in keys)):
            swept = dict(zip(keys, values, strict=True))
            yield swept, A2CConfig(**self.fixed, **swept)

    def configs(self) -> list[tuple[dict[str, Any], A2CConfig]]:
        return list(self.iter_configs())

    def iter_runs(self) -> Iterator[RunSpec]:
        """Every run, lazily: grid product (file order) x seeds, seed innermost."""
        for swept, config in self.iter_configs():
            for seed in self.seeds:
                yield RunSpec(run_id=run_id(config, seed), config=config, seed=seed,
                              swept=dict(swept))  # fmt: skip

    def runs(self) -> list[RunSpec]:
        """Every run (a list; see :attr:`num_runs` to count them without building them)."""
        return list(self.iter_runs())

    @property
    def num_runs(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds)


# --------------------------------------------------------------------------- run ids


NOT_IN_RUN_ID = ("epochs",)
"""Config fields a run's identity leaves out: no computation depends on them, so raising
``epochs`` extends every run from its final checkpoint (README "Resume, failures, and never losing a run": "Extend a sweep")."""


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(A2CConfig)}


def _canonical_config(config: A2CConfig) -> dict[str, Any]:
    data = {k: v for k, v in config.to_dict().items() if k not in NOT_IN_RUN_ID}
    for key in LATER_FIELDS:  # at their defaults, the ids of runs from before them
        if data[key] == _DEFAULTS[key]:
            del data[key]
    for key, value in data.items():
        # 1 and 1.0 for a float field are the same run
        if FIELD_TYPES.get(key) in (float, OPTIONAL_FLOAT) and isinstance(value, int | float) \
                and not isinstance(value, bool):  # fmt: skip
            data[key] = float(value)
    return data


def run_id(config: A2CConfig, seed: int) -> str:
    """First 12 hex chars of sha256 over the canonical JSON of the config and the seed.

    Floats are rendered by ``repr`` (json does), so ``0.1`` and ``1e-1`` give one id. The
    sweep name, execution options and the epoch count (:data:`NOT_IN_RUN_ID`) never enter it.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    payload = {"config": _canonical_config(config), "seed": int(seed)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------- experiment key


def experiment_key(sweep: Sweep) -> dict[str, Any]:
    """What must match for a relaunch under an existing name to be an edit of one experiment.

    ``{"fixed": every A2CConfig field not in the grid (but ``epochs``), resolved with
    defaults, "grid_keys": sorted grid keys}``. Grid values, seeds and ``epochs`` (extend or
    shorten every run) may change freely.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(A2CConfig)}
    resolved = {**defaults, **sweep.fixed}
    fixed = {}
    for key, value in resolved.items():
        if key in sweep.grid or key in NOT_IN_RUN_ID:
            continue
        if FIELD_TYPES.get(key) in (float, OPTIONAL_FLOAT) and isinstance(value, int | float) \
                and not isinstance(value, bool):  # fmt: skip
            value = float(value)
        fixed[key] = value
    return {"fixed": fixed, "grid_keys": sorted(sweep.grid)}


def check_compatible(old: Sweep, new: Sweep) -> None:
    """Raise SpecError unless ``new`` is an edit of the experiment ``old`` (same name)."""
    where = f"{new.path}"
    hint = f"use a new name, or keep it identical to {old.path}"
    if old.name != new.name:
        raise SpecError(f"{where}: name: {new.name!r} differs from the existing {old.name!r}")
    old_key, new_key = experiment_key(old), experiment_key(new)
    if old_key["grid_keys"] != new_key["grid_keys"]:
        added = sorted(set(new_key["grid_keys"]) - set(old_key["grid_keys"]))
        removed = sorted(set(old_key["grid_keys"]) - set(new_key["grid_keys"]))
        parts = []
        if added:
            parts.append(f"now swept: {', '.join(added)}")
        if removed:
            parts.append(f"no longer swept: {', '.join(removed)}")
        first = (added or removed)[0]
        raise SpecError(
            f"{where}: grid.{first}: the swept keys differ from the existing sweep "
            f"{old.name!r} ({'; '.join(parts)}); {hint}"
        )
    for key in new_key["fixed"]:
        a, b = old_key["fixed"].get(key), new_key["fixed"][key]
        if a != b or type(a) is not type(b):
            raise SpecError(
                f"{where}: {key}: fixed to {value_text(b)} here but {value_text(a)} in the "
                f"existing sweep {old.name!r}; {hint}"
            )


# --------------------------------------------------------------------------- validation


def check_name(name: Any) -> str | None:
    """Return what is wrong with a sweep name, or None if it is fine."""
    if not isinstance(name, str):
        return f"must be a string, got {name!r}"
    if not name:
        return "must not be empty"
    if "/" in name or "\\" in name:
        return f"must not contain '/', got {name!r}"
    if name.startswith("."):
        return f"must not start with '.', got {name!r}"
    if len(name) > _NAME_MAX:
        return f"must be at most {_NAME_MAX} characters"
    if not _NAME_RE.match(name):
        return f"only letters, digits, '.', '_' and '-' are allowed, got {name!r}"
    return None


def _unknown_key(key: Any, allowed: Iterable[str], what: str) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown {what} (did you mean {close[0]!r}?)"
    return f"unknown {what}; expected one of: {', '.join(allowed)}"


def _type_problem(field_name: str, value: Any) -> str | None:
    kind = FIELD_TYPES[field_name]
    if kind == WIDTHS:
        return None if value is None else widths_problem(value)
    if kind == OPTIONAL_FLOAT:
        if value is None:
            return None
        kind = float
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {value!r}"
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
    elif kind is bool:
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
    elif kind is str:
        if not isinstance(value, str):
            return f"expected a string, got {value!r}"
    return None


def _coerce(field_name: str, value: Any) -> Any:
    kind = FIELD_TYPES[field_name]
    if kind is float or (kind == OPTIONAL_FLOAT and value is not None):
        return float(value)
    if kind == WIDTHS and value is not None:
        return tuple(value)  # hashable: a grid value
    return value


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _known_env_ids() -> set[str]:
    # a2c_core is already imported (a2c_core.config above); if its __init__ registers the
    # SwingUp envs they are in the registry, and they are added here in any case so this
    # check never needs the (torch-importing) engine.
    import gymnasium

    return set(gymnasium.envs.registry) | set(SWINGUP_IDS)


def _parse_seeds(value: Any, err: Callable[[str, str], NoReturn]) -> Sequence[int]:
    if isinstance(value, Mapping):
        for key in value:
            if key not in _SEED_MAPPING_KEYS:
                err(f"seeds.{key}", _unknown_key(key, _SEED_MAPPING_KEYS, "key"))
        if "count" not in value:
            err("seeds.count", "required (seeds: {count: N, start: S})")
        count, start = value["count"], value.get("start", 0)
        if not _is_plain_int(count):
            err("seeds.count", f"expected an integer, got {count!r}")
        if count < 1:
            err("seeds.count", f"must be >= 1, got {count}")
        if not _is_plain_int(start):
            err("seeds.start", f"expected a non-negative integer, got {start!r}")
        if start < 0:
            err("seeds.start", f"must be >= 0, got {start}")
        if start + count - 1 > MAX_SEED:
            err("seeds", f"seeds must be <= {MAX_SEED}")
        return range(start, start + count)  # never a list: counted, not built
    if not isinstance(value, list):
        err("seeds", f"expected a list of integers or {{count: N, start: S}}, got {value!r}")
    if not value:
        err("seeds", "must not be empty")
    seen: set[int] = set()
    for i, seed in enumerate(value):
        if not _is_plain_int(seed):
            err(f"seeds[{i}]", f"expected a non-negative integer, got {seed!r}")
        if seed < 0:
            err(f"seeds[{i}]", f"must be >= 0, got {seed}")
        if seed > MAX_SEED:
            err(f"seeds[{i}]", f"must be <= {MAX_SEED}, got {seed}")
        if seed in seen:
            err(f"seeds[{i}]", f"duplicate seed {seed}")
        seen.add(seed)
    return list(value)


def _parse_execution(value: Any, err: Callable[[str, str], NoReturn]) -> Execution:
    if value is None:
        return Execution()
    if not isinstance(value, Mapping):
        err("execution", f"expected a mapping, got {value!r}")
    for key in value:
        if key not in _EXECUTION_KEYS:
            err(f"execution.{key}", _unknown_key(key, _EXECUTION_KEYS, "execution option"))
    every = value.get("checkpoint_every_s", DEFAULT_CHECKPOINT_EVERY_S)
    if isinstance(every, bool) or not isinstance(every, int | float):
        err("execution.checkpoint_every_s", f"expected a number of seconds, got {every!r}")
    if not (math.isfinite(every) and every > 0):
        err("execution.checkpoint_every_s", f"must be > 0, got {every}")
    out: dict[str, Any] = {"checkpoint_every_s": float(every)}
    for key in ("num_cpus", "pack_size"):
        v = value.get(key)
        if v is not None:
            if not _is_plain_int(v):
                err(f"execution.{key}", f"expected a positive integer or null, got {v!r}")
            if v < 1:
                err(f"execution.{key}", f"must be a positive integer, got {v}")
        out[key] = v
    nice = value.get("worker_niceness", 0)
    if not _is_plain_int(nice) or not 0 <= nice <= 19:
        err("execution.worker_niceness", f"expected an integer from 0 (the driver's priority) "
                                         f"to 19 (the lowest), got {nice!r}")  # fmt: skip
    out["worker_niceness"] = nice
    return Execution(**out)


MAX_RESAMPLES = 100_000  # bootstrap resamples per configuration and rung (racing.resamples)
_RACING_KEYS = ("rungs", "window", "statistic", "confidence", "resamples", "seed", "keep_top",
                "threshold", "min_seeds_done")  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_racing(value: Any, epochs: int, err: Callable[[str, str], NoReturn]) -> Racing | None:
    """The ``racing:`` block: absent or ``false`` is off; ``{}`` or ``true`` is on with the
    defaults of :class:`Racing`; a mapping overrides them."""
    if value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        err("racing", f"expected a mapping of racing options ({{}} for the defaults) or false, "
                      f"got {value!r}")  # fmt: skip
    for key in value:
        if key not in _RACING_KEYS:
            err(f"racing.{key}", _unknown_key(key, _RACING_KEYS, "racing option"))
    out: dict[str, Any] = {}
    given = "rungs" in value
    rungs = value.get("rungs", Racing.rung_spec)
    if isinstance(rungs, int | float) and not isinstance(rungs, bool):
        rungs = [rungs]
    if not isinstance(rungs, list | tuple) or not rungs:
        err("racing.rungs", "expected a non-empty list of epochs (integers) or fractions of "
                            f"`epochs` (numbers between 0 and 1), got {rungs!r}")  # fmt: skip
    resolved: list[int] = []
    for i, rung in enumerate(rungs):
        where = f"racing.rungs[{i}]"
        if _is_plain_int(rung):
            epoch = rung
        elif _is_number(rung) and 0 < rung < 1:
            epoch = max(1, math.floor(rung * epochs + 0.5))  # half up: 0.25 x 10 = 3
        else:
            err(where, "expected an epoch (an integer) or a fraction of `epochs` (a number "
                       f"strictly between 0 and 1), got {rung!r}")  # fmt: skip
        if not given:  # the defaults: those that fit this epoch count
            if 1 <= epoch < epochs and epoch not in resolved:
                resolved.append(epoch)
            continue
        if not 1 <= epoch < epochs:
            err(where, f"rung at epoch {epoch} is not between 1 and {epochs - 1} (a rung must "
                       f"come before the last epoch; epochs: {epochs})")  # fmt: skip
        if epoch in resolved:
            first = rungs[resolved.index(epoch)]
            err(where, f"rung at epoch {epoch} given twice ({first!r} and {rung!r} of epochs "
                       f"{epochs} are the same epoch)")  # fmt: skip
        resolved.append(epoch)
    if not resolved:
        err("racing", f"epochs: {epochs} leaves no epoch for a rung (the default rungs are "
                      "fractions 0.1 and 0.25 of `epochs`): give racing.rungs or remove racing")  # fmt: skip
    out["rungs"] = tuple(sorted(resolved))
    out["rung_spec"] = tuple(rungs)
    window = value.get("window", Racing.window)
    if _is_plain_int(window):
        if window < 1:
            err("racing.window", f"must be >= 1 epoch (or a fraction in (0, 1]), got {window}")
    elif not (_is_number(window) and 0 < window <= 1):
        err("racing.window", "expected a number of epochs (an integer >= 1) or a fraction of "
                             f"the rung epoch in (0, 1], got {window!r}")  # fmt: skip
    out["window"] = window
    statistic = value.get("statistic", Racing.statistic)
    if statistic not in RACING_STATISTICS:
        err("racing.statistic", f"expected one of {', '.join(RACING_STATISTICS)}, "
                                f"got {statistic!r}")  # fmt: skip
    out["statistic"] = statistic
    confidence = value.get("confidence", Racing.confidence)
    if not (_is_number(confidence) and 0.5 <= confidence < 1):
        err("racing.confidence", f"expected a number in [0.5, 1), got {confidence!r}")
    out["confidence"] = float(confidence)
    limits = {"resamples": (100, MAX_RESAMPLES), "seed": (0, MAX_SEED), "keep_top": (1, None),
              "min_seeds_done": (2, None)}  # fmt: skip
    for key, (low, high) in limits.items():
        v = value.get(key, getattr(Racing, key))
        if not _is_plain_int(v):
            err(f"racing.{key}", f"expected an integer, got {v!r}")
        if v < low:
            err(f"racing.{key}", f"must be >= {low}, got {v}")
        if high is not None and v > high:
            err(f"racing.{key}", f"must be <= {high:,}, got {v:,}")
        out[key] = v
    threshold = value.get("threshold")
    if threshold is not None and not _is_number(threshold):
        err("racing.threshold", f"expected a number or null, got {threshold!r}")
    out["threshold"] = None if threshold is None else float(threshold)
    return Racing(**out)


def load_spec(source: str | Path | Mapping[str, Any] | Sweep) -> Sweep:
    """Read and strictly validate a sweep: a YAML file's path, or the same content as a
    mapping (``{"name": ..., "grid": {...}, "seeds": [...]}``; errors then name
    ``<dict>``). A :class:`Sweep` is returned as it is. Raises :class:`SpecError`."""
    if isinstance(source, Sweep):
        return source
    if isinstance(source, Mapping):
        path = Path("<dict>")
        try:
            text = yaml.safe_dump(json.loads(json.dumps(dict(source))), sort_keys=False)
        except (TypeError, ValueError, yaml.YAMLError) as exc:
            raise SpecError(
                f"{path}: not plain data (numbers, strings, lists, mappings): {exc}"
            ) from None
        return _parse(text, path)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from None
    return _parse(text, path)


def _parse_grid(
    data: dict, fixed: dict[str, Any], err: Callable[[str, str], NoReturn]
) -> dict[str, list[Any]]:
    """The ``grid:`` mapping: known, sweepable fields, each a non-empty list of distinct
    values of the field's type (coerced as the fixed fields are)."""
    raw_grid = data.get("grid")
    if raw_grid is None:
        raw_grid = {}
    if not isinstance(raw_grid, dict):
        err("grid", f"expected a mapping of field: [values], got {raw_grid!r}")
    grid: dict[str, list[Any]] = {}
    for key, values in raw_grid.items():
        where = f"grid.{key}"
        if key not in FIELD_TYPES:
            if key in _META_KEYS:
                err(where, "not an A2CConfig field; it cannot be swept")
            err(where, _unknown_key(key, FIELD_TYPES, "A2CConfig field"))
        if key in NOT_IN_RUN_ID:
            err(
                where,
                "cannot be swept: a run's first E epochs are the same whatever its "
                "total, so every value would be the same run; set `epochs` to the largest "
                "value (each shorter horizon is a prefix of its rows)",
            )
        if key in fixed:
            err(
                where,
                f"also set at top level ({key}: {data[key]!r}); a field is fixed or swept, "
                "not both",
            )
        if not isinstance(values, list):
            err(where, f"expected a non-empty list of values, got {values!r}")
        if not values:
            err(where, "empty list: give at least one value")
        coerced: list[Any] = []
        seen_values: set[Any] = set()
        for i, value in enumerate(values):
            problem = _type_problem(key, value)
            if problem:
                err(f"{where}[{i}]", problem)
            value = _coerce(key, value)
            # same type within a field, so == is exact (0.1 == 1e-1; 1 == 1.0 after coercion);
            # a set keeps this linear for long value lists
            if value in seen_values:
                err(where, f"duplicate value {values[i]!r}")
            seen_values.add(value)
            coerced.append(value)
        grid[key] = coerced
    return grid


def _check_envs(grid: dict[str, list[Any]], fixed: dict[str, Any], key_path: Callable[[str], str],
                err: Callable[[str, str], NoReturn]) -> None:  # fmt: skip
    """Every env id of the sweep must be registered (with a close match as a hint); an id of
    gymnasium's ``module:EnvId-v0`` form is checked by :func:`trainable_problems` only (when a
    sweep is run: reading results never needs the module)."""
    envs = grid.get("env", [fixed.get("env", A2CConfig().env)])
    for i, env in enumerate(envs):
        problem = None if ":" in env else _unknown_env(env)
        if problem:
            err(f"grid.env[{i}]" if "env" in grid else key_path("env"), problem)


def _unknown_env(env: str) -> str | None:
    known = _known_env_ids()
    if env in known:
        return None
    close = difflib.get_close_matches(env, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown environment id {env!r}{hint}"


def env_id_problem(env: str) -> str | None:
    """None when the engine can train on ``env``; else one line: an unknown id (with a close
    match as a hint), a ``module:EnvId`` whose module cannot be imported or does not register
    the id, or an env that cannot be made or has unsupported spaces
    (:func:`a2c_core.envs.env_problem`)."""
    from a2c_core.envs import env_problem

    module, _, name = env.rpartition(":")
    if module:  # gymnasium's "module:EnvId-v0": importing the module registers the id
        import importlib

        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            return f"{env}: cannot import module {module!r} ({type(exc).__name__}: {first})"
        if name not in _known_env_ids():
            return f"{env}: module {module!r} does not register {name!r}"
    elif problem := _unknown_env(env):
        return problem
    problem = env_problem(env)
    return f"{env}: {problem}" if problem else None


def trainable_problems(sweep: Sweep) -> list[str]:
    """`a2c-sweep run` (and its dry run) refuse a sweep with an env the engine cannot train
    on, before Ray starts: one line per such env, naming its key."""
    envs = sweep.grid.get("env", [sweep.fixed.get("env", A2CConfig().env)])
    out = []
    for i, env in enumerate(envs):
        problem = env_id_problem(env)
        if problem:
            where = f"grid.env[{i}]" if "env" in sweep.grid else "env"
            out.append(f"{where}: {problem}")
    return out


def inexact_resume_warnings(sweep: Sweep) -> list[str]:
    """One line for each env id of the sweep whose env state checkpoints cannot hold
    (:func:`a2c_core.envs.state_capture`; nothing for the project's own envs, a round trip of
    ~0.1 s once per process for other ids), and for each knob set where it has no effect.
    `a2c-sweep run` and its dry run print them."""
    from a2c_core.envs import state_capture

    envs = sweep.grid.get("env", [sweep.fixed.get("env", A2CConfig().env)])
    lines = _idle_knob_warnings(sweep) + _slow_swingup_warnings(sweep)
    for env in dict.fromkeys(envs):
        reason = state_capture(env)
        if reason is not None:
            lines.append(
                f"{env}: its env state cannot be checkpointed ({reason}); an interrupted run "
                "resumes with its episodes restarted from fresh resets, so its numbers then "
                "differ from an uninterrupted run's"
            )
    return lines


def _slow_swingup_warnings(sweep: Sweep) -> list[str]:
    """A line when this machine cannot run the fused swing-up rollout for the sweep's
    swing-up shapes (a2c_core.fused.swingup_slow_path_warning; nothing to check otherwise)."""
    from a2c_core.envs.swingup import SWINGUP_IDS

    envs = sweep.grid.get("env", [sweep.fixed.get("env", A2CConfig().env)])
    if not set(envs) & set(SWINGUP_IDS):
        return []
    from a2c_core.fused import swingup_slow_path_warning

    shapes = {}
    for _, config in itertools.islice(sweep.iter_configs(), 10_000):
        shapes.setdefault(config.shape_key, config)
    lines = [swingup_slow_path_warning(c) for c in shapes.values()]
    return list(dict.fromkeys(line for line in lines if line))


def _idle_knob_warnings(sweep: Sweep) -> list[str]:
    """Knobs set (fixed or swept) on every run where they change nothing: an activation
    without a hidden layer, ``hidden`` when both nets' widths are given. Their runs still get
    ids of their own."""
    lines = []
    if ("hidden" in sweep.grid or "hidden" in sweep.fixed) and all(
        None not in sweep.grid.get(k, [sweep.fixed.get(k)])
        for k in ("policy_hidden", "value_hidden")
    ):
        lines.append("hidden: has no effect: policy_hidden and value_hidden are both set "
                     "(hidden: N is short for value_hidden: [N] and, for a Box action space, "
                     "policy_hidden: [N])")  # fmt: skip
    samples = max(c.num_envs * c.steps_per_epoch for _, c in itertools.islice(
        sweep.iter_configs(), 10_000))  # fmt: skip
    for widths in sweep.grid.get("value_hidden", [sweep.fixed.get("value_hidden")]):
        if widths and len(widths) != 1:  # the eager path keeps every layer's activations
            gib = 3 * samples * sum(widths) * 8 / 2**30
            if gib > 2:
                lines.append(f"value_hidden: {value_text(widths)} on {samples:,} samples an "
                             f"epoch holds about {gib:.0f} GiB of activations per run in the "
                             "value fit (a pack needs that per run)")  # fmt: skip
    for key, layers in (("activation", "policy_hidden"), ("value_activation", "value_hidden")):
        set_here = key in sweep.grid or key in sweep.fixed
        widths = sweep.grid.get(layers, [sweep.fixed.get(layers)])
        if set_here and all(w == () for w in widths):
            lines.append(f"{key}: has no effect: {layers} is [] (no hidden layer)")
    return lines


def _parse(text: str, path: Path) -> Sweep:
    def err(key: str, problem: str) -> NoReturn:
        raise SpecError(f"{path}: {key}: {problem}")

    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: {_yaml_error_line(exc)}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a sweep file") from None
    if data is None:
        raise SpecError(f"{path}: empty file: expected a mapping with at least name and seeds")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: top level: expected a mapping, got {type(data).__name__}")

    for key in data:
        if key not in _TOP_KEYS:
            err(str(key), _unknown_key(key, _TOP_KEYS, "key"))

    if "name" not in data:
        err("name", "required")
    problem = check_name(data["name"])
    if problem:
        err("name", problem)
    name: str = data["name"]

    description = data.get("description")
    if description is not None and not isinstance(description, str):
        err("description", f"expected a string, got {description!r}")

    if "seeds" not in data:
        err("seeds", "required (a list of integers or {count: N, start: S})")
    seeds = _parse_seeds(data["seeds"], err)

    execution = _parse_execution(data.get("execution"), err)

    fixed: dict[str, Any] = {}
    for key, value in data.items():
        if key in FIELD_TYPES:
            problem = _type_problem(key, value)
            if problem:
                err(key, problem)
            fixed[key] = _coerce(key, value)

    grid = _parse_grid(data, fixed, err)

    def key_path(field_name: str) -> str:
        if field_name in grid:
            return f"grid.{field_name}"
        if field_name in fixed:
            return field_name
        return f"{field_name} (default)"

    def config_error(exc: ValueError) -> NoReturn:
        message = str(exc)
        field_name, sep, problem = message.partition(": ")
        if sep and field_name in FIELD_TYPES:
            err(key_path(field_name), problem)
        err("config", message)

    # value ranges: fixed alone, then each grid value with the fixed fields, then every point
    try:
        A2CConfig(**fixed)
    except ValueError as exc:
        config_error(exc)
    for key, values in grid.items():
        for value in values:
            try:
                A2CConfig(**{**fixed, key: value})
            except ValueError as exc:
                config_error(exc)

    _check_envs(grid, fixed, key_path, err)

    racing = None
    if "racing" in data:
        racing = _parse_racing(data["racing"], A2CConfig(**fixed).epochs, err)

    sweep = Sweep(
        name=name,
        path=path,
        fixed=fixed,
        grid=grid,
        seeds=seeds,
        execution=execution,
        raw=data,
        description=description,
        text=text,
        racing=racing,
    )
    try:  # a constraint across fields (none today): the first grid point shows it; the
        # whole grid is checked when its runs are built (never here: a grid may be huge)
        next(sweep.iter_configs(), None)
    except ValueError as exc:
        config_error(exc)
    return sweep
