#!/bin/bash
# Issue 13, acceptance 2: two drivers of one sweep, a random delay (0-8 s) between the
# launches, 5 times; every returns.csv must be contiguous and equal (minus wall_s) to an
# uninterrupted sweep. Run from anywhere: bash tests/runner/two_drivers_5x.sh (work dir /tmp/two)
A="$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/a2c-sweep"
mkdir -p /tmp/two && cd /tmp/two
cat > long.yaml <<'Y'
name: long
env: CartPole-v0
num_envs: 4
steps_per_epoch: 1000
value_iters: 80
epochs: 300
grid: {policy_lr: [0.1, 0.01]}
seeds: [1, 2]
execution: {checkpoint_every_s: 0.2, num_cpus: 2}
Y
rm -rf ref; $A run long.yaml --results ref > ref.log 2>&1 || exit 1
for i in 1 2 3 4 5; do
  rm -rf r$i; d=$(python3 -c "import random; print(round(random.uniform(0, 8), 2))")
  $A run long.yaml --results r$i > r$i.a.log 2>&1 & PA=$!
  sleep $d
  $A run long.yaml --results r$i > r$i.b.log 2>&1; RB=$?
  wait $PA; RA=$?
  same=yes
  for f in ref/long/runs/*/returns.csv; do
    g=r$i/long/runs/$(basename $(dirname $f))/returns.csv
    cmp -s <(cut -d, -f1-12 $f) <(cut -d, -f1-12 $g) || same=no
    python3 -c "import csv,sys; e=[int(r['epoch']) for r in csv.DictReader(open('$g'))]; sys.exit(e!=list(range(1,301)))" || same=no
  done
  echo "trial $i delay ${d}s: A rc=$RA B rc=$RB identical+contiguous=$same; B says: $(tail -1 r$i.b.log | cut -c1-110)"
done
