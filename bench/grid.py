"""The article's 180-run CartPole grid: the article-style loop vs the real `a2c-sweep run`.

One run of this script, on one machine, prints (docs/design.md "Definitions"):

(a) the article-style loop (bench/epoch_throughput.py's re-implementation), two processes
    side by side (one per core), seconds per run-epoch per core;
(b) the real `a2c-sweep run` of the article grid's shape (36 configs x 5 seeds = 180 runs,
    8 envs x T=4052, 80 value iterations, embedded Ray on 2 CPUs) with the epoch count cut to
    E1 and E2 epochs: seconds per run-epoch per core = slope x CPUs / runs, where the slope
    (t(E2) - t(E1)) / (E2 - E1) removes fixed costs (Ray start, JIT, pack set-up); the full
    100-epoch grid is extrapolated as t(E1) + (100 - E1) x slope (fixed costs counted once);
(c) the ratio (a) / (b);
(d) value-fit GFLOP/s per core (1,920 FLOP per sample per iteration, 80 iterations on 32,416
    samples) next to a one-thread 2048^3 float32 torch.mm measured in the same run, and the
    value fit's share of (b);
(e) the same sweep (E2 epochs) on 1 CPU vs 2 CPUs: wall(1 CPU) / wall(2 CPUs), Ray start
    excluded, the median of the per-repeat ratios (the two sweeps run back to back, so a slow
    spell of the shared host hits both); for reference, the ratio of the training phases the
    CLI reports;
(f) peak resident memory of the driver and of each worker (as reported by `a2c-sweep run`).

Each figure is the median of --repeats repeats, configurations interleaved inside a repeat.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLI = [sys.executable, "-m", "runner.cli"]
RUNS = 180
FULL_EPOCHS = 100
SAMPLES = 8 * 4052
VALUE_ITERS = 80
FLOP_PER_SAMPLE_ITER = 1920

GRID_YAML = """\
name: {name}
env: CartPole-v0
num_envs: 8
steps_per_epoch: 4052
epochs: {epochs}
value_iters: 80
grid:
  policy_lr: [0.1, 0.01, 0.001]
  value_lr: [0.1, 0.01, 0.001]
  gamma: [0.99, 0.999]
  lam: [0.9, 0.99]
seeds: [9827391, 8534101, 4305430, 12654329, 3483055]
execution:
  checkpoint_every_s: 60
  num_cpus: {cpus}
"""


def single_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    return env


# ----------------------------------------------------------------------------- (a)
def article_worker(epochs: int) -> None:
    """Child process: time `epochs` article epochs, print their seconds as JSON."""
    sys.path.insert(0, str(HERE))
    import epoch_throughput as et

    et.configure_threads()
    times = et.time_article(seed=os.getpid(), steps=4052, epochs=epochs)
    print(json.dumps(times))


def article_side_by_side(epochs: int) -> float:
    """Two article processes at once (one per core); median s per epoch (first dropped)."""
    cmd = [sys.executable, __file__, "--article-worker", str(epochs + 1)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=single_thread_env())
             for _ in range(2)]  # fmt: skip
    times = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"article worker failed ({p.returncode})")
        times += json.loads(out.strip().splitlines()[-1])[1:]
    return statistics.median(times)


# ----------------------------------------------------------------------------- (b), (e), (f)
def run_sweep(epochs: int, cpus: int, workdir: Path) -> dict:
    """One real `a2c-sweep run` in a fresh results dir; wall time and what the CLI reports."""
    name = f"grid-e{epochs}-c{cpus}"
    sweep = workdir / f"{name}.yaml"
    sweep.write_text(GRID_YAML.format(name=name, epochs=epochs, cpus=cpus))
    results = Path(tempfile.mkdtemp(dir=workdir, prefix="results-"))
    t0 = time.perf_counter()
    proc = subprocess.run(CLI + ["run", str(sweep), "--results", str(results)], cwd=ROOT,
                          capture_output=True, text=True, env=single_thread_env())  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"a2c-sweep run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    out = proc.stdout + proc.stderr
    ray_start = _find(r"ray started in ([0-9.]+) s", out)
    trained = _find(r"trained in ([0-9.]+) s", out)
    driver = _find(r"peak RSS: driver ([0-9.]+) MB", out)
    workers = [float(x) for x in re.findall(r"worker ([0-9.]+) MB", out)]
    return {"wall": wall, "ray_start": ray_start or 0.0, "trained": trained or wall,
            "driver_mb": driver, "worker_mb": workers}  # fmt: skip


def _find(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------- (d)
def value_fit_and_sgemm(repeats: int) -> tuple[float, float, float]:
    """(value-fit seconds for 80 iterations, value-fit GFLOP/s, sgemm GFLOP/s), medians."""
    code = f"""
import json, time, numpy as np, torch
torch.set_num_threads(1)
from a2c_core import valuefit as vf
from a2c_core.adam import AdamState
rng = np.random.default_rng(0)
x = rng.normal(size=({SAMPLES}, 4)).astype(np.float32)
y = rng.normal(size={SAMPLES}).astype(np.float32) * 20
fits, mms = [], []
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
torch.mm(a, b)
for _ in range({repeats} + 1):
    p = vf.init_value_params(4, 64, np.random.default_rng(1), np.float32)
    opt = AdamState.zeros_like(p)
    t = time.perf_counter(); vf.value_fit(x, y, p, opt, 0.01, {VALUE_ITERS})
    fits.append(time.perf_counter() - t)
    t = time.perf_counter(); torch.mm(a, b); mms.append(time.perf_counter() - t)
print(json.dumps([fits[1:], mms[1:]]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=single_thread_env(), check=True, cwd=ROOT).stdout  # fmt: skip
    fits, mms = json.loads(out.strip().splitlines()[-1])
    fit = statistics.median(fits)
    return (
        fit,
        FLOP_PER_SAMPLE_ITER * SAMPLES * VALUE_ITERS / fit / 1e9,
        2 * 2048**3 / statistics.median(mms) / 1e9,
    )


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        )
    except Exception:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--epochs", default="2,8", help="E1,E2 epochs of the cut-down grid (E2 also for (e))"
    )
    parser.add_argument("--article-epochs", type=int, default=2)
    parser.add_argument("--article-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.article_worker:
        article_worker(args.article_worker)
        return 0
    e1, e2 = (int(x) for x in args.epochs.split(","))
    started = time.perf_counter()
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs); command: {' '.join(sys.argv)}")
    samples: dict[str, list] = {k: [] for k in ("a", "2_e1", "2_e2", "1_e2", "fit")}
    with tempfile.TemporaryDirectory(prefix="a2c-grid-bench-") as tmp:
        work = Path(tmp)
        for rep in range(args.repeats):
            samples["a"].append(article_side_by_side(args.article_epochs))
            samples["2_e1"].append(run_sweep(e1, 2, work))
            samples["2_e2"].append(run_sweep(e2, 2, work))
            samples["1_e2"].append(run_sweep(e2, 1, work))
            samples["fit"].append(value_fit_and_sgemm(1))
            print(
                f"repeat {rep + 1}/{args.repeats} done ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    med = statistics.median

    def wall(key: str) -> float:
        return med(s["wall"] for s in samples[key])

    a = med(samples["a"])
    slope2 = (wall("2_e2") - wall("2_e1")) / (e2 - e1)
    b = slope2 * 2 / RUNS
    full = wall("2_e1") + (FULL_EPOCHS - e1) * slope2
    fit_s = med(f[0] for f in samples["fit"])
    fit_gf = med(f[1] for f in samples["fit"])
    peak = med(f[2] for f in samples["fit"])
    # adjacent in each repeat, so a slow spell of the shared host hits both: ratio per repeat
    ratios = [
        (one["wall"] - one["ray_start"]) / (two["wall"] - two["ray_start"])
        for one, two in zip(samples["1_e2"], samples["2_e2"], strict=True)
    ]
    scaling = med(ratios)
    scaling_train = med(s["trained"] for s in samples["1_e2"]) / med(
        s["trained"] for s in samples["2_e2"]
    )
    drivers = [
        s["driver_mb"] for k in ("2_e1", "2_e2", "1_e2") for s in samples[k] if s["driver_mb"]
    ]
    workers = [w for k in ("2_e1", "2_e2", "1_e2") for s in samples[k] for w in s["worker_mb"]]
    print()
    print("| figure | value |")
    print("| --- | ---: |")
    print(
        f"| (a) article-style loop, 2 processes side by side: s per run-epoch per core | {a:.3f} |"
    )
    print(f"| (b) `a2c-sweep run`, 180 runs, 2 CPUs: s per run-epoch per core | {b:.4f} |")
    print(
        f"| (b) full 100-epoch grid, extrapolated (fixed costs {wall('2_e1') - e1 * slope2:.1f} s) | {full / 60:.1f} min |"
    )
    print(
        f"| (a) full grid on 2 cores, for comparison | {a * RUNS * FULL_EPOCHS / 2 / 3600:.1f} h |"
    )
    print(f"| (c) ratio (a) / (b) | {a / b:.1f}x |")
    print(
        f"| (d) value fit GFLOP/s per core (80 it x 32,416 samples: {fit_s * 1e3:.1f} ms) | {fit_gf:.1f} |"
    )
    print(f"| (d) sgemm peak GFLOP/s (1 thread, 2048^3 torch.mm) | {peak:.1f} |")
    print(f"| (d) value fit / sgemm peak | {100 * fit_gf / peak:.0f} % |")
    print(f"| (d) value fit share of (b) | {100 * fit_s / b:.0f} % |")
    print(
        f"| (e) scaling: wall 1 CPU / 2 CPUs ({e2} epochs, Ray start excluded) | {scaling:.2f}x |"
    )
    print(
        f"| (e) scaling of the training phase alone (first submit to last result) | {scaling_train:.2f}x |"
    )
    print(f"| (e) per repeat (1 CPU / 2 CPUs, Ray start excluded) | "
          f"{', '.join(f'{r:.2f}x' for r in ratios)} |")  # fmt: skip
    if drivers:
        print(f"| (f) peak RSS driver, MB (max) | {max(drivers):.0f} |")
    if workers:
        print(f"| (f) peak RSS per worker, MB (max) | {max(workers):.0f} |")
    print(f"\nmedians of {args.repeats} repeats; bench wall {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
