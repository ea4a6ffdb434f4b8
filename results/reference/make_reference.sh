#!/usr/bin/env bash
# How results/reference/ was made (docs/results.md): the article's experiments, run with the
# project's own CLI on one 2-core machine. Each sweep resumes if relaunched.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=.venv/bin/a2c-sweep
R=results/reference
export OMP_NUM_THREADS=1

$A run sweeps/cartpole_v0_grid.yaml --results $R          # 1. the article's 180-run grid
.venv/bin/python bench/racing.py                            # 4. the grid with and without racing (figures)
# the raced grid under its own root (under $R it would copy the full grid's finished runs)
$A run sweeps/cartpole_v0_grid_race.yaml --results /tmp/race
cp -r /tmp/race/cartpole-v0-grid-race $R/ && find $R/cartpole-v0-grid-race -name '*.pt' -delete
$A run sweeps/swingup.yaml --results $R                   # 2. the article's swing-up, 16 seeds
$A run sweeps/swingup_grid.yaml --results $R              # 3. coarse grid around it, 5 seeds
# sweeps/swingup_fine.yaml came from `$A refine $R/swingup-grid -o sweeps/swingup_fine.yaml --top 1 --points 3 --seeds 16`
# with refine's first (median-based) rule; today's rule keeps all three parameters (docs/results.md, 3)
$A run sweeps/swingup_fine.yaml --results $R              #    and the finer grid it proposes
$A run sweeps/acrobot.yaml --results $R                   # 5. Acrobot-v1 (own env), 6 configs x 5 seeds
$A run sweeps/cartpole_v1_fast.yaml --results $R          # 6. CartPole-v1: least training time to solve
.venv/bin/python bench/peers.py --pick $R/cartpole-v1-fast --tasks CartPole-v1   # its ranking (bench/peers.py's config)
$A run sweeps/acrobot_fast.yaml --results $R              # 7. Acrobot-v1: the same question
.venv/bin/python bench/peers.py --pick $R/acrobot-fast --tasks Acrobot-v1
$A run sweeps/swingup_knobs.yaml --results $R             # 8. the knobs' study: coarse grid,
# sweeps/swingup_knobs_fine.yaml came from `$A refine $R/swingup-knobs -o sweeps/swingup_knobs_fine.yaml --top 2 --points 3 --seeds 3`
$A run sweeps/swingup_knobs_fine.yaml --results $R        #    its refinement,
$A run sweeps/swingup_best.yaml --results $R              #    the winner on 16 fresh seeds,
$A run sweeps/swingup_knobs_edge.yaml --results $R        #    past the refined grid's edge,
$A run sweeps/swingup_best_wide.yaml --results $R         #    and its best there on 16 seeds
.venv/bin/python bench/torch_a2c.py sweeps/swingup_best.yaml --seeds 8 --start 500   # independent check

for name in cartpole-v0-grid cartpole-v0-grid-race swingup swingup-grid swingup-grid-refined acrobot cartpole-v1-fast acrobot-fast swingup-knobs swingup-knobs-refined swingup-best swingup-knobs-edge swingup-best-wide; do
    $A analyze $R/$name --top 10
done
.venv/bin/python results/reference/make_policies.py                # the best runs' policies (gif --best)
$A gif --best $R/cartpole-v0-grid -o docs/cartpole_best.gif --deterministic
$A gif --best $R/swingup -o docs/swingup_best.gif --deterministic
$A report $R/cartpole-v0-grid -o docs/cartpole-v0-grid-report.html   # the offline report
