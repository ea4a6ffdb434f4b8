"""The results contract shared by the writer (runner.store) and the readers (analysis,
`status`, `gif`): file names, run states, the returns.csv columns, and the rules a run's
rows must satisfy. Imports only the standard library and a2c_core.config (and torch inside
:func:`to_torch`). See docs/design.md, "The results contract"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2c_core.config import INT_RETURN_COLUMNS, RETURN_COLUMNS

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "FINISHED_STATES",
    "INT_RETURN_COLUMNS",
    "PENDING",
    "POLICY",
    "RETURNS",
    "RETURN_COLUMNS",
    "RUNS_CSV",
    "STATES",
    "STATUS",
    "SWEEP_YAML",
    "code_version",
    "ResultsFileError",
    "ReturnsFile",
    "contiguous_epochs",
    "parse_returns",
    "parse_row",
    "read_policy",
    "read_returns",
    "policy_state",
    "to_numpy",
    "to_torch",
]

SWEEP_YAML, RUNS_CSV = "sweep.yaml", "runs.csv"
CONFIG, RETURNS, STATUS = "config.json", "returns.csv", "status.json"
CHECKPOINT, POLICY = "checkpoint.pt", "policy.pt"
POLICY_FORMAT = 1
"""the "format" of policy.pt (and of the engine's checkpoints)."""

STATES = ("running", "done", "failed", "diverged", "stopped")
"""states a status.json holds. ``stopped``: ended early by racing (runner.racing) at the
rung epoch its status.json names (``rung``, ``reason``); its rows end there."""
FINISHED_STATES = frozenset({"done", "failed", "diverged", "stopped"})
PENDING = "pending"
"""the state runs.csv and the readers give a run with no (readable) status.json."""


RETURNS_HEADER = (",".join(RETURN_COLUMNS) + "\n").encode("ascii")


class ResultsFileError(ValueError):
    """A results file that cannot be read; the message is one line naming the file."""


@dataclass
class ReturnsFile:
    """What :func:`parse_returns` finds in a returns.csv."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    """one dict per row: ints for epoch/env_steps/episodes, floats else."""
    lines: list[bytes] = field(default_factory=list)
    """each row's raw line (no newline), for a rewrite that keeps bytes as they were."""
    torn: bool = False
    """a last line was left out: cut by a crash mid-append (or unparsable: the same thing
    seen after a crash), or blank lines at the end (an editor's)."""


def parse_row(line: bytes) -> dict[str, Any] | str:
    """One returns.csv data line -> its row, or what is wrong with it."""
    try:
        cells = line.decode("ascii").split(",")
    except UnicodeDecodeError:
        return "not ASCII text"
    if len(cells) != len(RETURN_COLUMNS):
        return f"expected {len(RETURN_COLUMNS)} fields, got {len(cells)}"
    row: dict[str, Any] = {}
    for column, cell in zip(RETURN_COLUMNS, cells, strict=True):
        try:
            row[column] = int(cell) if column in INT_RETURN_COLUMNS else float(cell)
        except ValueError:
            return f"column {column!r}: not {'an integer' if column in INT_RETURN_COLUMNS else 'a number'}: {cell[:20]!r}"
    return row


def parse_returns(data: bytes, where: str) -> ReturnsFile:
    """The one returns.csv reader (the store, analysis, status and gif use it).

    The header must be exactly :data:`RETURN_COLUMNS` (so CRLF line ends are refused), and
    every line but the last must be a row. The last line may be bad: it is left out and
    ``torn`` is set (a crash mid-append leaves a line without its newline; the store cuts
    it before appending again). Raises :class:`ResultsFileError` naming ``where`` and the line.
    """
    lines = data.split(b"\n")
    torn = lines[-1] != b""  # no trailing newline: the last line was cut
    complete = lines[:-1]
    while complete and not complete[-1].strip():  # blank lines at the end
        complete.pop()
        torn = True
    if not complete:
        if torn and not RETURNS_HEADER.startswith(lines[0]):
            raise ResultsFileError(f"{where}: corrupt returns.csv: unexpected header "
                                   f"{lines[0][:60].decode(errors='replace')!r}")  # fmt: skip
        return ReturnsFile(torn=torn)  # empty, or a header cut short: no rows yet
    if complete[0].endswith(b"\r") and complete[0][:-1] + b"\n" == RETURNS_HEADER:
        raise ResultsFileError(f"{where}: corrupt returns.csv: CRLF (Windows) line endings")
    if complete[0] + b"\n" != RETURNS_HEADER:
        raise ResultsFileError(
            f"{where}: corrupt returns.csv: unexpected header "
            f"{complete[0][:60].decode(errors='replace')!r} (expected {','.join(RETURN_COLUMNS)})"
        )
    out = ReturnsFile(torn=torn)
    body = complete[1:]
    for i, line in enumerate(body):
        row = parse_row(line)
        if isinstance(row, str):
            if i == len(body) - 1:  # the last line: cut by a crash, left out
                out.torn = True
                break
            raise ResultsFileError(f"{where}: line {i + 2}: corrupt returns.csv: {row}")
        out.rows.append(row)
        out.lines.append(line)
    return out


def read_returns(path: str | Path) -> ReturnsFile:
    """:func:`parse_returns` of a file; a missing file has no rows."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return ReturnsFile()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_returns(data, str(path))


def read_policy(path: str | Path) -> dict[str, Any]:
    """The one policy.pt reader: ``{"config": dict, "seed": int, "params": {name: numpy}}``
    (plus ``"obs_rms"``, checked, for an ``obs_norm`` run).
    Raises :class:`ResultsFileError` (one line naming the file) when it is missing or is not
    a policy this package wrote. Loads with ``weights_only=True``: no code is executed."""
    import numpy as np
    import torch

    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"{path}: missing (the run has not finished, or is not a run dir)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ResultsFileError(
            f"{path}: cannot read policy ({type(exc).__name__}: {why})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ResultsFileError(f"{path}: corrupt policy.pt (no 'params')")
    if not isinstance(data.get("config"), dict) or "env" not in data["config"]:
        raise ResultsFileError(f"{path}: corrupt policy.pt (no 'config' with an env)")
    params = {name: np.asarray(t.numpy() if hasattr(t, "numpy") else t)
              for name, t in data["params"].items()}  # fmt: skip
    seed = data.get("seed", 0)
    out = {"config": data["config"], "seed": int(seed.item() if hasattr(seed, "item") else seed),
           "params": params}  # fmt: skip
    if data["config"].get("obs_norm"):
        from a2c_core.obsnorm import stats_problem

        problem = stats_problem(data.get("obs_rms"))
        if problem:
            raise ResultsFileError(f"{path}: corrupt policy.pt of an obs_norm run ({problem})")
        out["obs_rms"] = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, np.float64)
                          for k, v in data["obs_rms"].items()}  # fmt: skip
    return out


def contiguous_epochs(rows: Sequence[Mapping[str, Any]]) -> int:
    """k such that rows[:k] hold epochs 1..k in order (the rows a resume can trust)."""
    k = 0
    for row in rows:
        if row["epoch"] != k + 1:
            break
        k += 1
    return k


def policy_state(config: Any, seed: int, params: Mapping[str, Any],
                 obs_rms: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """What policy.pt holds: enough to rebuild and run the policy (gif, evaluation).
    ``config`` is an A2CConfig (or its dict), ``params`` the policy's arrays (copied),
    ``obs_rms`` the observation statistics of an ``obs_norm`` run (a2c_core.obsnorm)."""
    import numpy as np

    state = {"format": POLICY_FORMAT, "config": config if isinstance(config, dict) else config.to_dict(),
             "seed": int(seed), "params": {k: np.array(v, copy=True) for k, v in params.items()}}  # fmt: skip
    if obs_rms is not None:
        state["obs_rms"] = {k: np.array(v, copy=True) for k, v in obs_rms.items()}
    return state


def to_torch(obj: Any) -> Any:
    """A checkpoint or policy state with every numpy array replaced by a torch tensor (what
    checkpoint.pt and policy.pt hold: ``torch.load(..., weights_only=True)`` reads them)."""
    import numpy as np
    import torch

    if isinstance(obj, np.ndarray):
        ok = obj.flags.c_contiguous and obj.flags.writeable  # Ray hands out read-only arrays
        return torch.from_numpy(obj if ok else obj.copy())  # copy() keeps 0-d arrays 0-d
    if isinstance(obj, dict):
        return {k: to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_torch(v) for v in obj)
    return obj


def to_numpy(obj: Any) -> Any:
    """The inverse of :func:`to_torch`: every tensor of a loaded checkpoint as a numpy array,
    so that the Ray worker resuming it never imports torch (about 2 s and 230 MB each)."""
    if hasattr(obj, "numpy") and hasattr(obj, "detach"):  # a torch tensor
        return obj.detach().cpu().numpy()
    if isinstance(obj, dict):
        return {k: to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy(v) for v in obj)
    return obj


def code_version() -> str:
    """The package version, plus the git commit of the checkout it runs from when there is
    one (``0.1.0+g1a2b3c4``, ``-dirty`` when the work tree has uncommitted changes)."""
    return _code_version()


def _git(*args: str) -> str | None:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read_code_version() -> str:
    from importlib import metadata

    try:
        version = metadata.version("a2c-sweep")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return version
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{version}+g{commit}" + ("-dirty" if dirty else "")


_CACHE: list[str] = []


def _code_version() -> str:
    if not _CACHE:
        _CACHE.append(_read_code_version())
    return _CACHE[0]
