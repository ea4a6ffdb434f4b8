"""Read a results directory into one long-form pandas DataFrame (one row per run and epoch).

The layout is the one written by :class:`runner.store.Store` (docs/design.md "The results
contract")::

    <results>/<name>/sweep.yaml, runs.csv, runs/<run_id>/{config.json, returns.csv, status.json}

Which runs: the rows of runs.csv (the runs of the sweep as last launched). Without runs.csv,
every run directory under runs/, with the swept parameters taken from sweep.yaml's grid keys
(or, lacking that, the config fields that differ between runs). Run directories of an earlier
launch that runs.csv no longer lists belong to another version of the experiment and are left
out.

Nothing is dropped silently: a run that has not recorded an epoch yet (pending, or failed at
start) keeps one placeholder row with ``epoch`` <NA> and NaN metrics, so that counts of
done / running / failed / diverged / stopped runs can be taken from the frame alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from a2c_core import results as results_schema
from a2c_core.config import INT_RETURN_COLUMNS, RETURN_COLUMNS
from a2c_core.results import PENDING
from a2c_core.results import STATES as RESULT_STATES

__all__ = [
    "ID_COLUMNS",
    "INT_COLUMNS",
    "RETURN_COLUMNS",
    "STATES",
    "AnalysisError",
    "config_label",
    "load",
    "param_columns",
    "row_problems",
]

INT_COLUMNS = INT_RETURN_COLUMNS
STATES = (*RESULT_STATES, PENDING)
"""run states in the frame: status.json's, plus ``pending`` (no status yet)."""
ID_COLUMNS = ("run_id", "config", "config_id", "seed", "state", "stopped_at")
"""columns of :func:`load`'s frame that are neither swept parameters nor returns.csv columns."""


class AnalysisError(Exception):
    """A results directory that cannot be analysed. ``str(err)`` is one line naming the file."""


# --------------------------------------------------------------------------- labels


def format_value(value: Any) -> str:
    """Short text for a parameter value: ``0.001``, ``0.999``, ``64``, ``True``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


def config_label(params: dict[str, Any], exact: bool = False) -> str:
    """``"policy_lr=0.1, value_lr=0.01"``; ``"all runs"`` when nothing is swept. Floats are
    shown with 4 significant digits, or (``exact``) as the shortest text that reads back as
    the same float: :func:`config_labels` uses that for configurations 4 digits cannot tell
    apart (gamma 0.99999 and 0.999994)."""
    if not params:
        return "all runs"
    fmt = (lambda v: repr(float(v)) if isinstance(v, float | np.floating) else format_value(v)) if exact else format_value  # fmt: skip
    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def config_id(params: dict[str, Any]) -> str:
    """A stable id of a configuration: 12 hex digits of a SHA-256 of its swept values."""
    text = json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()},
                      sort_keys=True)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_labels(configs: Sequence[dict[str, Any]]) -> list[str]:
    """One display label per configuration, distinct for distinct configurations: short
    labels where they differ, exact ones where 4 significant digits would merge two."""
    short = [config_label(c) for c in configs]
    ids: dict[str, set[str]] = {}
    for label, c in zip(short, configs, strict=True):
        ids.setdefault(label, set()).add(config_id(c))
    return [config_label(c, exact=True) if len(ids[label]) > 1 else label
            for label, c in zip(short, configs, strict=True)]  # fmt: skip


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The swept-parameter columns of a frame from :func:`load` (or derived from it)."""
    skip = set(ID_COLUMNS) | set(RETURN_COLUMNS)
    params = frame.attrs.get("params")
    if params is not None:
        return [p for p in params if p in frame.columns]
    # a frame that lost its attrs: everything left of "config"/"seed" that is no known column
    out = []
    for column in frame.columns:
        if column in ("config", "seed"):
            break
        if column not in skip:
            out.append(column)
    return out


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AnalysisError(f"{path}: corrupt JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{path}: corrupt JSON (expected an object)")
    return data


def _read_status(run_dir: Path, fallback: str) -> tuple[str, int | None]:
    """The run's state and, for a run stopped by racing, the rung epoch its status.json
    names (None otherwise, or when the status does not say: the caller falls back)."""
    path = run_dir / "status.json"
    try:
        data = _read_json(path)
    except AnalysisError:
        data = None  # the store rewrites status.json atomically; unreadable = not started
    if data is None:
        return fallback, None
    state = data.get("state")
    if state not in STATES:
        raise AnalysisError(f"{path}: unknown state {state!r}")
    # where a stopped run's verified rows end (what the runner checks), else its `rung`;
    # an old or hand-edited status may have neither
    for key in ("epochs_done", "rung"):
        rung = data.get(key)
        if isinstance(rung, int) and not isinstance(rung, bool) and rung > 0:
            return state, rung if state == "stopped" else None
    return state, None


def read_returns(path: Path) -> pd.DataFrame:
    """One run's returns.csv as a frame (RETURN_COLUMNS), read by the package's one reader
    (a2c_core.results.parse_returns): a missing file gives no rows, a torn last line (a
    crash mid-append, or a run still writing) is left out, anything else that does not
    parse raises :class:`AnalysisError` naming the file and line. Rows after a repeated or
    decreasing epoch (two writers once) are dropped; row_problems() reports the run."""
    try:
        rows = results_schema.read_returns(path).rows
    except results_schema.ResultsFileError as exc:
        raise AnalysisError(str(exc)) from None
    if not rows:
        return read_returns_empty()
    frame = pd.DataFrame(rows, columns=list(RETURN_COLUMNS))
    bad = np.flatnonzero(np.diff(frame["epoch"].to_numpy()) <= 0)
    if bad.size:
        frame = frame.iloc[: bad[0] + 1].reset_index(drop=True)
    return frame


def read_returns_empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in RETURN_COLUMNS})


def param_value(value: Any, kind: Any) -> Any:
    """A swept value as the analysis holds it: one scalar per configuration, ordered and
    hashable. Layer widths become their text (``"[64, 64]"``; a list would be read by pandas
    as a column of values); a null ``max_grad_norm`` (no clipping) becomes inf (clipping at an
    infinite norm is no clipping), so the column stays numeric. :func:`analysis.refine`
    writes both back as the sweep file's values."""
    from a2c_core.config import OPTIONAL_FLOAT, WIDTHS, value_text

    if kind == WIDTHS or isinstance(value, list | tuple):
        return value_text(value) if isinstance(value, list | tuple) else str(value)
    if kind == OPTIONAL_FLOAT:
        return math.inf if value is None else float(value)
    return value


def _coerce(value: str, kind: type | None) -> Any:
    """A runs.csv cell -> the parameter's type (runs.csv stores text)."""
    from a2c_core.config import OPTIONAL_FLOAT, WIDTHS

    if kind == WIDTHS:
        return value.strip()
    if kind == OPTIONAL_FLOAT:
        return math.inf if value.strip() in ("", "null") else float(value)
    if kind is bool:
        return value.strip().lower() == "true"
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    if kind is str:
        return value
    for convert in (int, float):  # unknown field: best effort
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _field_types() -> dict[str, type]:
    from a2c_core.config import FIELD_TYPES  # cheap: no torch, no ray

    return FIELD_TYPES


def _runs_from_csv(results: Path, path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            body = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnalysisError(f"{path}: cannot read runs.csv ({exc})") from None
    if header is None:
        return [], []
    if not header or header[0] != "run_id" or "seed" not in header or "state" not in header:
        raise AnalysisError(
            f"{path}: corrupt runs.csv: header must be run_id, params..., seed, state"
        )
    params = header[1 : header.index("seed")]
    types = _field_types()
    runs, seen = [], set()
    for number, cells in enumerate(body, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise AnalysisError(f"{path}: line {number}: corrupt runs.csv: wrong field count")
        row = dict(zip(header, cells, strict=True))
        run_id = row["run_id"]
        # a run id names a directory under runs/: never a path out of it, never twice
        if not run_id or run_id in (".", "..") or "/" in run_id or "\\" in run_id:
            raise AnalysisError(f"{path}: line {number}: corrupt runs.csv: run_id {run_id!r}")
        if run_id in seen:
            raise AnalysisError(
                f"{path}: line {number}: corrupt runs.csv: run_id {run_id} listed twice"
            )
        seen.add(run_id)
        config = _read_json(results / "runs" / run_id / "config.json")
        resolved = (config or {}).get("config") or {}
        values = {}
        for p in params:
            # config.json keeps the exact type and value; runs.csv is text
            try:
                values[p] = resolved[p] if p in resolved else _coerce(row[p], types.get(p))
            except ValueError:
                raise AnalysisError(f"{path}: line {number}: {p}: cannot read {row[p]!r}") from None
        try:
            seed = int(row["seed"])
        except ValueError:
            raise AnalysisError(f"{path}: line {number}: seed: not an integer") from None
        values = {p: param_value(v, types.get(p)) for p, v in values.items()}
        runs.append({"run_id": run_id, "params": values, "seed": seed, "state": row["state"]})
    return params, runs


def _runs_from_dirs(results: Path) -> tuple[list[str], list[dict[str, Any]]]:
    runs_dir = results / "runs"
    if not runs_dir.is_dir():
        return [], []
    configs = {}
    for run_dir in sorted(runs_dir.iterdir()):
        if not run_dir.is_dir() or run_dir.name.startswith("."):
            continue
        path = run_dir / "config.json"
        config = _read_json(path)
        if config is None:
            raise AnalysisError(f"{path}: missing (needed to identify the run without runs.csv)")
        if not isinstance(config.get("config"), dict) or "seed" not in config:
            raise AnalysisError(f"{path}: corrupt config.json (no 'config' or 'seed')")
        configs[run_dir.name] = config
    if not configs:
        return [], []
    params: list[str] | None = None
    sweep_yaml = results / "sweep.yaml"
    if sweep_yaml.is_file():
        from a2c_core.spec import SpecError, load_spec

        try:
            params = list(load_spec(sweep_yaml).grid)
        except SpecError:
            params = None
    if params is None:  # the fields that differ between runs
        fields = next(iter(configs.values()))["config"].keys()
        params = [
            f for f in fields if len({json.dumps(c["config"].get(f)) for c in configs.values()}) > 1
        ]
    types = _field_types()
    runs = [
        {
            "run_id": run_id,
            "params": {p: param_value(c["config"].get(p), types.get(p)) for p in params},
            "seed": int(c["seed"]),
            "state": "pending",
        }
        for run_id, c in configs.items()
    ]
    return params, runs


def load(results_dir: str | Path) -> pd.DataFrame:
    """Results directory -> long-form frame, one row per (run, epoch).

    Columns: the swept parameters (in grid order), ``config`` (a label such as
    ``"policy_lr=0.1, value_lr=0.01"``), ``run_id``, ``seed``, ``state`` (done, running,
    pending, diverged, failed, stopped: from status.json, which is fresher than runs.csv),
    ``stopped_at`` (nullable integer: for a run stopped early by racing, the rung epoch of
    its status.json, else its last recorded epoch (0 if none); <NA> for every other run),
    then every returns.csv column. ``epoch``, ``env_steps`` and ``episodes`` are nullable
    integers; a run with no recorded epoch has one row with ``epoch`` <NA>. Rows are in grid
    order, then seed, then epoch. ``frame.attrs["params"]`` lists the swept parameters,
    ``attrs["name"]`` the sweep name.

    Raises :class:`AnalysisError` (one line naming the file) for a missing directory, an empty
    sweep or a file that cannot be parsed.
    """
    results = Path(results_dir)
    if not results.exists():
        raise AnalysisError(f"{results}: no such results directory")
    if not results.is_dir():
        raise AnalysisError(f"{results}: not a directory")
    runs_csv = results / "runs.csv"
    if runs_csv.is_file():
        params, runs = _runs_from_csv(results, runs_csv)
    else:
        params, runs = _runs_from_dirs(results)
    if not runs:
        raise AnalysisError(
            f"{results}: empty sweep: no runs found (no rows in runs.csv and no runs/ directories)"
        )
    frames = []
    labels = config_labels([run["params"] for run in runs])
    for run, label in zip(runs, labels, strict=True):
        run_dir = results / "runs" / run["run_id"]
        returns = read_returns(run_dir / "returns.csv")
        fallback = run["state"] if run["state"] in STATES else "pending"
        state, rung = _read_status(run_dir, fallback)
        stopped_at: Any = pd.NA
        if state == "stopped":  # the rows of a stopped run end at its rung
            last = int(returns["epoch"].iloc[-1]) if len(returns) else 0
            stopped_at = rung if rung is not None else last
        if returns.empty:  # keep the run visible
            returns = pd.DataFrame([[math.nan] * len(RETURN_COLUMNS)], columns=list(RETURN_COLUMNS))
        for p in params:
            returns.insert(len(returns.columns) - len(RETURN_COLUMNS), p, run["params"][p])
        front = {
            "config": label,
            "config_id": config_id(run["params"]),
            "run_id": run["run_id"],
            "seed": run["seed"],
            "state": state,
            "stopped_at": stopped_at,
        }
        for i, (column, value) in enumerate(front.items()):
            returns.insert(len(params) + i, column, value)
        frames.append(returns)
    frame = pd.concat(frames, ignore_index=True)
    for column in INT_COLUMNS:
        try:
            frame[column] = frame[column].astype("Int64")
        except (OverflowError, TypeError, ValueError):
            bad = frame.loc[pd.to_numeric(frame[column], errors="coerce").abs() >= 2**63]
            where = f"run {bad['run_id'].iloc[0]}: " if len(bad) else ""
            raise AnalysisError(
                f"{results}: {where}returns.csv column {column!r} holds a value out of range"
            ) from None
    for column in RETURN_COLUMNS:
        if column not in INT_COLUMNS:
            frame[column] = frame[column].astype(float)
    frame["seed"] = frame["seed"].astype("int64")
    frame["stopped_at"] = frame["stopped_at"].astype("Int64")
    frame.attrs["params"] = list(params)
    # a directory name that is not UTF-8 (surrogate escapes) would break every writer
    name = results.resolve().name
    frame.attrs["name"] = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return frame


# --------------------------------------------------------------------------- row checks


def row_problems(results_dir: str | Path) -> dict[str, str]:
    """What is wrong with the returns.csv rows of each run of ``results_dir``: run id -> one
    line (problems joined by "; "), for the runs that have a problem only, in runs.csv order.

    A run's epochs must be 1, 2, ..., k: a gap gives ``"epochs 101-206 missing"`` (a repeat or
    a step back: ``"epochs are not increasing: ..."``, which :func:`load` refuses). A run
    whose status.json says done must have its config.json's ``epochs`` rows (``"done but has
    133 of 400 epochs"``), a diverged one the ``epochs_done`` of its status, and no run may
    go past its config's epochs. An unreadable returns.csv is reported, not raised.

    Which runs: those of runs.csv, else every run directory. Reads only epoch numbers,
    status.json and config.json (no runner, torch or pandas work), so `a2c-sweep status` can
    use it as well as `analyze`. Raises :class:`AnalysisError` for a missing directory.
    """
    results = Path(results_dir)
    if not results.exists():
        raise AnalysisError(f"{results}: no such results directory")
    if not results.is_dir():
        raise AnalysisError(f"{results}: not a directory")
    problems = {}
    for run_id in _listed_run_ids(results):
        found = _run_row_problems(results / "runs" / run_id)
        if found:
            problems[run_id] = "; ".join(found)
    return problems


def _listed_run_ids(results: Path) -> list[str]:
    """Run ids of runs.csv (first column) when it is readable, else the run directories."""
    try:
        with open(results / "runs.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    if rows and rows[0] and rows[0][0] == "run_id":
        return [cells[0] for cells in rows[1:] if cells]
    runs_dir = results / "runs"
    if not runs_dir.is_dir():
        return []
    return sorted(d.name for d in runs_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_epochs(path: Path) -> tuple[list[int], str | None]:
    """returns.csv's epoch column (read as :func:`read_returns` does) and what makes the file
    unreadable, if anything. A missing file has no epochs."""
    try:
        rows = results_schema.read_returns(path).rows
    except results_schema.ResultsFileError as exc:
        return [], str(exc).removeprefix(f"{path}: ")
    return [row["epoch"] for row in rows], None


def _describe_gaps(gaps: list[tuple[int, int]]) -> str:
    spans = [f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:3]]
    if len(gaps) > 3:
        spans.append(f"... ({len(gaps)} gaps)")
    word = "epoch" if len(gaps) == 1 and gaps[0][0] == gaps[0][1] else "epochs"
    return f"{word} {', '.join(spans)} missing"


def _run_row_problems(run_dir: Path) -> list[str]:
    epochs, unreadable = _read_epochs(run_dir / "returns.csv")
    if unreadable:
        return [unreadable]
    gaps: list[tuple[int, int]] = []
    expected = 1
    for number, epoch in enumerate(epochs, start=2):  # number: the line in returns.csv
        if epoch < 1:
            return [f"epoch {epoch} at line {number} (epochs start at 1)"]
        if epoch < expected:
            previous = epochs[number - 3]
            return [
                f"epochs are not increasing: epoch {epoch} after epoch {previous} (line {number})"
            ]
        if epoch > expected:
            gaps.append((expected, epoch - 1))
        expected = epoch + 1
    found = [_describe_gaps(gaps)] if gaps else []

    def read(name: str) -> dict[str, Any]:
        try:
            return _read_json(run_dir / name) or {}
        except AnalysisError:
            return {}

    status = read("status.json")
    config = read("config.json").get("config")
    planned = config.get("epochs") if isinstance(config, dict) else None
    planned = planned if isinstance(planned, int) and not isinstance(planned, bool) else None
    rows = len(epochs)
    if planned is not None and epochs and epochs[-1] > planned:
        found.append(f"epoch {epochs[-1]} is past its config's {planned} epochs")
    state = status.get("state")
    if state == "done" and planned is not None and rows < planned:
        found.append(f"done but has {rows} of {planned} epochs")
    want = status.get("epochs_done")
    if state in ("diverged", "stopped") and isinstance(want, int) and want and rows != want:
        found.append(
            f"{state} but has {rows} of {want} epochs"
            if rows < want
            else f"{state} at epoch {want} but has {rows} rows"
        )
    return found


def config_params(frame: pd.DataFrame, params: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per configuration: ``config`` and the parameter values, in frame order."""
    params = list(param_columns(frame) if params is None else params)
    return frame.drop_duplicates("config")[["config", *params]].reset_index(drop=True)
