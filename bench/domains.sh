#!/usr/bin/env bash
# Lightweight-domain figures for docs/benchmarks.md: training step per parameterization
# against FULL (StyleGAN-NADA) at 256 and 1024 px, what each reaches in the same number
# of steps, serving mixed-domain batches, and a 1,000-domain repository. One process per
# figure (peak RSS is per process). Usage: bench/domains.sh [build-dir] > results.jsonl
set -euo pipefail
B="${1:-build}/bench/ganserve_bench"
run() { "$B" "$@" 2>/dev/null | tail -n 1; }
for res in 256 1024; do
  iters=$([ "$res" = 1024 ] && echo 1 || echo 2)
  run --scenario nada_step --resolution "$res" --batch 2 --iters "$iters"
  for p in domain_modulation stylespace_direction affine_light; do
    run --scenario domain_step --resolution "$res" --batch 2 --iters "$iters" --parameterization "$p"
    run --scenario domain_step --resolution "$res" --batch 2 --iters "$iters" --parameterization "$p" --modconv grouped
  done
done
run --scenario domain_serve --resolution 256 --batch 16 --iters 2
run --scenario domain_repository --resolution 1024 --domains 1000
run --scenario domain_quality --resolution 64 --batch 4 --iters 30
