#!/usr/bin/python3
"""Runs ganserve_bench and the official code side by side and writes one markdown table.

For every setting it alternates the two, each run a separate process (ganserve_bench,
then official_bench.py, then ganserve_bench again, ... for --rounds rounds), each
reporting the median of --iters steps after a warm-up; a row shows the median of those
medians. In the same run it records the machine (CPU, threads, BLAS, OPENBLAS_CORETYPE,
torch versions, load average) and measures its peak with Debian's torch on the same
thread count: a 2048^3 float32 matmul and a 512->512 3x3 convolution at 64x64, batch 1
(GFLOP/s, median of several, at the start and at the end). Writes FILE.md and FILE.json
(every run's raw JSON, command line and error) beside it, rewritten after each setting
so that an interrupted run keeps what it measured. A run that fails is shown as an
error in its cell; the others go on.

  /usr/bin/python3 bench/official/side_by_side.py --out /tmp/side_by_side.md \\
      --nada-root ~/StyleGAN-nada --clip-root ~/CLIP \\
      --rosinality-root ~/stylegan2-pytorch --styleclip-root ~/StyleCLIP \\
      --oneshot-root ~/OneshotCLIP

The checkout roots may also come from GANSERVE_NADA_ROOT, GANSERVE_CLIP_ROOT,
GANSERVE_ROSINALITY_ROOT, GANSERVE_STYLECLIP_ROOT and GANSERVE_ONESHOT_ROOT; only those
that the chosen scenarios need are required. The oneshot scenario runs
bench/official/oneshot_bench.py, which also takes git directories (mirrors) for
--oneshot-root and --clip-root. The mapper scenario runs bench/official/mapper_bench.py
(StyleCLIP's latent mapper: inference.py's edit, the mapper forward, one iteration of
Coach.train()), which also takes git directories for --styleclip-root and --clip-root
and, when they are not given, falls back to GANSERVE_STYLECLIP_ROOT / GANSERVE_CLIP_ROOT
or the mirrors under /work/.mirror, so they are optional for it; the encoder scenario
runs bench/official/encoder_bench.py (encoder4editing's encoder and inference) the same
way with --e4e-root and --styleclip-root. --quick runs the 256 px
settings (and clip) once with --iters 1, for smoke tests; --at-resolution N runs the
chosen settings at N px instead (e.g. 64 on a small machine):

  /usr/bin/python3 bench/official/side_by_side.py --scenarios mapper --at-resolution 64 \\
      --iters 2 --rounds 1 --out /tmp/mapper.md
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Work per timed unit in GFLOP, counted as docs/benchmarks.md counts it: a multiply-add is
# 2 FLOP; convolutions, matmuls and attention products count, elementwise passes do not.
#   render: one config-f image: the modulated 3x3 convolutions (the stride-2 transposed
#     ones on their input grid), ToRGB, the 4x4 blurs and the skip upsampling
#     (docs/benchmarks.md); other resolutions are not counted there.
#   vit_image: one 224 px image through ViT-B/32's image tower: 12 blocks x 50 tokens x
#     (12 x 768^2 weights + 2 x 50 x 768 attention) MACs + the 32x32 patch convolution.
#   text_prompt: one prompt through CLIP's text tower, which always runs all 77
#     positions: 12 blocks x 77 x (12 x 512^2 + 2 x 77 x 512) MACs.
#   nada_step: batch 2, no layer selection (docs/benchmarks.md): the frozen and trainable
#     renders, backward = 2x forward for the trainable generator, CLIP on four images
#     and its input gradient for two.
GFLOP = {
    "render": {256: 90.7, 1024: 150.8},
    "vit_image": 2 * (12 * 50 * (12 * 768**2 + 2 * 50 * 768) + 49 * 768 * 3 * 32 * 32) / 1e9,
    "text_prompt": 2 * 12 * 77 * (12 * 512**2 + 2 * 77 * 512) / 1e9,
    "nada_step": {256: 778.0, 1024: 1259.0},
}


def step_gflop(scenario, res, batch, k):
    """(GFLOP of ganserve's timed unit, or None, and why when None) for the main row."""
    render = GFLOP["render"].get(res)
    vit = GFLOP["vit_image"]
    if render is None and scenario in ("generate", "invert_step", "latent_opt_step", "global_stats", "mapper"):
        return None, f"no render count at {res} px"
    if scenario == "generate":
        return batch * render, None
    if scenario == "nada_step":
        if k > 0:
            return None, "layer selection's extra pass (8 samples, w optimisation) is not counted"
        if batch != 2:
            return None, "counted at batch 2 only"
        return GFLOP["nada_step"].get(res), None
    if scenario == "mapper":
        # The edit: `batch` renders (the mapper itself, 3 x 4 linear 512x512 layers on
        # n_latent rows, is below 0.05 GFLOP a latent and not counted).
        return batch * render, None
    if scenario in ("invert_step", "latent_opt_step"):
        # Render + its backward to the latent and noise (the data-gradient pass, one
        # forward's worth; a backward through modulated weights would add one more),
        # CLIP on one image + its input gradient. A lower bound.
        return 2 * render + 2 * vit, None
    if scenario == "global_stats":
        return batch * (render + vit), None  # `batch` renders and CLIP images, no gradients
    return None, None


SCENARIO_NOTES = {
    "nada_step": "Same work except CLIP's weight gradients, which neither computes at StyleGAN-NADA dc8406a "
                 "(its CLIPLoss freezes CLIP since PR #59; the official JSON's clip_params_given_gradients "
                 "shows it). Layer selection: the official encodes the prompt with CLIP's text tower again in "
                 "every selection iteration; ours encodes it once.",
    "generate": "Same work: one z batch through mapping and synthesis, constant noise, no gradients.",
    "clip": "Same work. The official-only row is CLIP as clip.load returns it (weights require grad), "
            "which StyleCLIP's losses run; ours keeps CLIP's weights out of the graph.",
    "invert_step": "Different perceptual loss: the official projector.py uses LPIPS (VGG16 features of the "
                   "target and the render every step, ~3 x 40 GFLOP, random backbone); ours' invert_step "
                   "uses a CLIP ViT-B/32 image loss (2 x 8.8 GFLOP). Both: w+, MSE, noise regularisation, "
                   "Adam, noise normalisation, rosinality's generator.",
    "latent_opt_step": "The official CLIPLoss runs CLIP's full forward every step (the prompt through the "
                       "text tower too) and back-propagates into both towers' weights; ours encodes the "
                       "text once and keeps CLIP's weights out of the graph.",
    "global_stats": "Same images per step: the official renders each image in its own synthesis call "
                    "(global_torch networks.py, random weights, TF-converted config-f kwargs), ours "
                    "renders the batch at once. The statistics row maps 1000 z to S (official: GenerateS "
                    "+ GetCodeMS; ours: one statistics step).",
    "oneshot": "Same steps (OneshotCLIP train_oneshot.py at its defaults, ref_freq 2 so that both iteration "
               "kinds alternate; the first of each kind is a warm-up). The official keeps CLIP's and LPIPS's "
               "weights requiring grad, so every backward also fills their weight gradients (the JSON's "
               "clip_params_given_gradients), encodes the source images and crops with a graph, re-encodes "
               "the target every search step, runs its LPIPS with dropout active (train mode), computes the "
               "patch discriminator's block convolutions twice, and reads the target JPEG from disk for "
               "every real batch; ours does none of these.",
    "mapper": "Edit: same work (w + 0.1 mapper(w) for the batch, one render, no gradients; the official is "
              "inference.py's run_on_batch). Training step (batch 2, StyleCLIP's Coach.train() iteration: "
              "LevelsMapper, render, CLIP ViT-B/32 loss on the 7x-upsampled and pooled image, latent L2 x 0.8, "
              "Ranger lr 0.5, id loss off): the official also renders the unedited source image every step (only "
              "its id loss and image logs use it), runs CLIP's full forward (the prompt through the text tower "
              "too) and, since neither its decoder nor CLIP is frozen, back-propagates into the generator's and "
              "both CLIP towers' weights (the JSON's *_params_given_gradients); ours encodes the text once and "
              "computes only the gradients to w and the mapper. The official batch comes from its DataLoader "
              "(in-process here, --workers 0).",
    "encoder": "Encode: the same network (e4e's Encoder4Editing, IR-SE-50 + 18 or 14 style heads, on 256 px "
               "images, no gradients). Inversion of one photo: the official is inference.py's run_on_batch "
               "(encoder, latent_avg, render with the stored noise maps, pooled to 256 px); ours is the job's "
               "encode step (encoder, latent_avg, the same render, PSNR against the photo).",
}


def settings(quick):
    all_settings = [
        ("nada_step", 256, 2, 0), ("nada_step", 1024, 2, 0), ("nada_step", 256, 2, 9),
        ("generate", 256, 1, 0), ("generate", 256, 4, 0), ("generate", 1024, 1, 0), ("generate", 1024, 4, 0),
        ("clip", None, 2, 0),
        ("invert_step", 256, 1, 0),
        ("latent_opt_step", 256, 1, 0), ("latent_opt_step", 1024, 1, 0),
        ("global_stats", 256, 16, 0),
        ("oneshot", 256, 2, 0), ("oneshot", 1024, 2, 0),
        ("mapper", 256, 4, 0), ("mapper", 1024, 4, 0),
        ("encoder", 256, 1, 0), ("encoder", 1024, 1, 0),
    ]
    out = [dict(scenario=s, resolution=r, batch=b, auto_layer_k=k) for s, r, b, k in all_settings]
    return [s for s in out if s["resolution"] in (None, 256)] if quick else out


NEEDS = {  # checkout roots each scenario's official code needs
    "nada_step": ("nada", "clip"), "generate": ("nada",), "clip": ("nada", "clip"),
    "invert_step": ("rosinality",), "latent_opt_step": ("styleclip", "clip"), "global_stats": ("styleclip", "clip"),
    "oneshot": ("oneshot", "clip"),
    "mapper": (),  # mapper_bench.py falls back to GANSERVE_*_ROOT or the mirrors; the roots are passed when given
    "encoder": (),  # encoder_bench.py likewise (e4e, and StyleCLIP for the pure-PyTorch op package)
}

PEAK_SCRIPT = r"""
import json, re, statistics, sys, time
import torch
import torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]))
reps = int(sys.argv[2])
def rate(fn, flop):
    fn()
    secs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t0)
    return flop / statistics.median(secs) / 1e9
with torch.no_grad():
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    mm = rate(lambda: torch.mm(a, b), 2 * 2048 ** 3)
    conv = rate(lambda: F.conv2d(x, w, padding=1), 2 * 512 * 512 * 9 * 64 * 64)
with open("/proc/self/maps") as f:
    loaded = sorted({l.split()[-1] for l in f if any(k in l for k in ("blas", "lapack", "blis"))})
info = re.search(r"BLAS_INFO=([^,]+)", torch.__config__.show())
print(json.dumps({"matmul_gflops": mm, "conv_gflops": conv, "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "blas_loaded": loaded,
                  "torch_blas_info": info.group(1) if info else "unknown"}))
"""


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run(cmd, timeout):
    """Runs one benchmark process: {"cmd", "rc", "wall_s", "json", "error", "stderr_tail"}."""
    shown = ["<peak script>" if arg == PEAK_SCRIPT else arg for arg in cmd]
    print("+ " + " ".join(shown), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    r = {"cmd": cmd, "rc": None, "json": None, "error": None, "stderr_tail": ""}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        r["error"] = f"timed out after {timeout} s"
    except OSError as e:
        r["error"] = str(e)
    else:
        r["rc"], r["json"] = p.returncode, last_json(p.stdout)
        r["stderr_tail"] = "\n".join(p.stderr.splitlines()[-20:])
        if p.returncode != 0 or r["json"] is None:
            lines = [l.strip() for l in (p.stderr + "\n" + p.stdout).splitlines()
                     if l.strip() and not l.startswith("Run with --help")]  # CLI11's last line says only that
            r["error"] = f"exit {p.returncode}: " + (lines[-1] if lines else "no output")
    r["wall_s"] = time.perf_counter() - t0
    print(f"  -> {r['error'] or 'ok'} ({r['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    return r


def machine_info(threads):
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
            "cpus_available": len(os.sched_getaffinity(0)), "threads_used": threads,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset"),
            "libblas_alternative": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3"),
            "loadavg_start": os.getloadavg()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu_model"] = fields.get("Model name", "unknown")
        info["cpu_topology"] = (f"{fields.get('Socket(s)', '?')} socket(s) x {fields.get('Core(s) per socket', '?')} "
                                f"core(s) x {fields.get('Thread(s) per core', '?')} thread(s)")
    except (OSError, subprocess.CalledProcessError) as e:
        info["cpu_model"] = f"unknown ({e})"
    return info


def measure_peak(python, threads, reps, timeout):
    r = run([python, "-c", PEAK_SCRIPT, str(threads), str(reps)], timeout)
    return r["json"] or {"error": r["error"]}


def get(j, path):
    for key in path:
        if not isinstance(j, dict) or key not in j:
            return None
        j = j[key]
    return j


def rows_for(s):
    """(label, JSON path of the seconds on our side or None, on theirs, GFLOP, why none, kind)."""
    sc, res, b, k = s["scenario"], s["resolution"], s["batch"], s["auto_layer_k"]
    gflop, why = step_gflop(sc, res, b, k)
    m = ["median_s"]
    if sc == "generate":
        return [(f"{res} px, batch {b}", m, m, gflop, why, "images")]
    if sc == "nada_step":
        return [(f"{res} px, batch {b}" + (f", auto_layer_k {k}" if k else ""), m, m, gflop, why, "time")]
    if sc == "clip":
        vit, txt = GFLOP["vit_image"], GFLOP["text_prompt"]
        return [
            (f"encode_image, batch {b}", ["encode_image", "median_s"], ["encode_image", "median_s"], b * vit, None,
             "time"),
            (f"encode_image + input gradient, batch {b}", ["encode_image_with_input_grad", "median_s"],
             ["encode_image_with_input_grad", "median_s"], 2 * b * vit, None, "time"),
            ("encode_text, 79 prompts", ["encode_text_79", "median_s"], ["encode_text_79", "median_s"], 79 * txt,
             None, "time"),
            (f"encode_image + input and weight gradients, batch {b} (official only)", None,
             ["encode_image_with_input_and_weight_grads", "median_s"], None, "no ganserve counterpart", "time"),
        ]
    if sc == "invert_step":
        return [(f"{res} px (official LPIPS-VGG, ours CLIP loss)", m, m, gflop, why, "time")]
    if sc == "latent_opt_step":
        return [(f"{res} px, batch 1", m, m, gflop, why, "time")]
    if sc == "global_stats":
        return [(f"{res} px, relevance step of {b} renders + CLIP", m, m, gflop, why, "time"),
                ("statistics step, 1000 mapped samples", ["sample_step_1000_s"], ["sample_step_1000_s"], None,
                 "mapping-bound, small", "time")]
    if sc == "oneshot":
        return [(f"{res} px: reference-search step", ["reference_search", "median_s"],
                 ["reference_search", "median_s"], None, None, "time"),
                (f"{res} px: fine-tuning iteration, reference kind", ["fine_tune_reference", "median_s"],
                 ["fine_tune_reference", "median_s"], None, None, "time"),
                (f"{res} px, batch {b}: fine-tuning iteration, random (patch) kind", ["fine_tune_random", "median_s"],
                 ["fine_tune_random", "median_s"], None, None, "time"),
                (f"{res} px, batch {b}: default job (1001 + 2001 steps), estimated", ["default_job_estimate_s"],
                 ["default_job_estimate_s"], None, None, "time")]
    if sc == "encoder":
        return [(f"encoder forward, batch {b} at 256 px", ["encode", "median_s"], ["encode", "median_s"], None,
                 "not counted", "time"),
                (f"{res} px: inversion of one photo (encoder + render)", ["invert", "median_s"],
                 ["invert", "median_s"], None, "not counted", "time")]
    if sc == "mapper":
        render, vit = GFLOP["render"].get(res), GFLOP["vit_image"]
        # Training: ganserve's step at batch 2 renders two images and back-propagates to w
        # (one forward's worth), CLIP on both and its input gradient: a lower bound.
        train = 2 * (2 * render + 2 * vit) if render else None
        return [(f"{res} px: edit of {b} latents (mapper + render)", ["edit", "median_s"], ["edit", "median_s"],
                 gflop, why, "time"),
                (f"mapper forward, {b} latents", ["mapper_forward", "median_s"], ["mapper_forward", "median_s"],
                 None, "small", "time"),
                (f"{res} px: training step, batch 2", ["train_step", "median_s"], ["train_step", "median_s"],
                 train, None if render else f"no render count at {res} px", "time")]
    return []


GOALS = {"nada_step": ("<= 0.3x", lambda r: r <= 0.3), "generate": (">= 3x images/s", lambda r: r >= 3),
         "oneshot": ("<= 0.6x", lambda r: r <= 0.6)}


def fmt_s(v):
    return "" if v is None else (f"{v:.3g} s" if v < 100 else f"{v:.0f} s")


def cell_error(runs):
    errors = [r["error"] for r in runs if r["error"]]
    if not errors:
        return None
    return "error: " + errors[-1].replace("|", "/")[:120]


def side_value(runs, path):
    """Median over rounds of each run's median, and the smallest min, or (None, error)."""
    if path is None:
        return None, None, "n/a"
    err = cell_error(runs)
    vals = [get(r["json"], path) for r in runs if not r["error"]]
    vals = [v for v in vals if isinstance(v, (int, float))]
    if not vals:
        return None, None, err or "missing in output"
    mins = [get(r["json"], path[:-1] + ["min_s"]) for r in runs if not r["error"]]
    mins = [v for v in mins if isinstance(v, (int, float))]
    return statistics.median(vals), (min(mins) if mins else None), None


def peak_rss(runs):
    v = [get(r["json"], ["peak_rss_mb"]) for r in runs if r["json"]]
    v = [x for x in v if isinstance(x, (int, float))]
    return f"{max(v) / 1024:.2f} GB" if v else "?"


def table(results, peak):
    lines = ["| scenario | setting | official median | ganserve median | ratio | goal | ganserve GFLOP/s | "
             "% of peak | peak RSS (official / ganserve) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        s = res["setting"]
        for label, ours_path, theirs_path, gflop, why, kind in rows_for(s):
            o, o_min, o_err = side_value(res["ours"], ours_path)
            t, t_min, t_err = side_value(res["official"], theirs_path)
            ratio = goal = rate = pct = ""
            if o is not None and t is not None:
                r = t / o if kind == "images" else o / t
                ratio = f"{r:.2f}x" + (" images/s" if kind == "images" else " time")
                if s["scenario"] in GOALS:
                    text, ok = GOALS[s["scenario"]]
                    goal = f"{text}: {'met' if ok(r) else 'not met'}"
            elif s["scenario"] in GOALS:
                goal = GOALS[s["scenario"]][0]
            if o is not None and gflop:
                rate = f"{gflop / o:.0f}"
                if peak:
                    pct = f"{100 * gflop / o / peak:.0f} %"
            elif why:
                rate = f"({why})"

            def show(v, vmin, err):
                if err:
                    return err
                return fmt_s(v) + (f" (min {fmt_s(vmin)})" if vmin is not None and vmin < v * 0.995 else "")

            rss = f"{peak_rss(res['official'])} / {peak_rss(res['ours'])}" if label == rows_for(s)[0][0] else ""
            lines.append(f"| {s['scenario']} | {label} | {show(t, t_min, t_err)} | {show(o, o_min, o_err)} | "
                         f"{ratio} | {goal} | {rate} | {pct} | {rss} |")
    return lines


def write_report(path, args, machine, peaks, results, finished):
    best = [p.get(k) for p in peaks for k in ("matmul_gflops", "conv_gflops")]
    best = [v for v in best if isinstance(v, (int, float))]
    peak = max(best) if best else None
    ours_blas = sorted({r["json"]["blas"] for x in results for r in x["ours"] if r["json"] and "blas" in r["json"]})
    libtorch = sorted({r["json"].get("torch_version") for x in results for r in x["ours"] if r["json"]} - {None})
    theirs_blas = sorted({r["json"]["blas"] for x in results for r in x["official"]
                          if r["json"] and "blas" in r["json"]})
    py = next((p for p in peaks if "torch" in p), {})
    md = [f"# ganserve vs the official code, side by side ({machine['date']})", ""]
    if not finished:
        md += ["**Incomplete: the run stopped or is still going; rows below are what it measured.**", ""]
    md += [
        f"- CPU: {machine.get('cpu_model')} ({machine.get('cpu_topology', '?')}), "
        f"{machine['cpus_available']} CPUs available, {machine['threads_used']} threads used by both sides",
        f"- ganserve_bench: LibTorch {', '.join(libtorch) or '?'}, BLAS {', '.join(ours_blas) or '?'}",
        f"- official (python): torch {py.get('torch', '?')} (BLAS_INFO={py.get('torch_blas_info', '?')}), libblas.so.3 -> "
        f"{machine['libblas_alternative']}; loaded: {', '.join(theirs_blas) or ', '.join(py.get('blas_loaded', []))}",
        f"- OPENBLAS_CORETYPE: {machine['openblas_coretype']}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in machine['loadavg_start'])}"
        + (f", at end {' '.join(f'{x:.2f}' for x in machine['loadavg_end'])}" if "loadavg_end" in machine else ""),
        "- peak (python torch, same threads, median of " + str(args.peak_reps) + "): " + "; ".join(
            f"{p['when']}: matmul 2048^3 {p.get('matmul_gflops', 0):.0f} GFLOP/s, conv 512->512 3x3 64x64 "
            f"{p.get('conv_gflops', 0):.0f} GFLOP/s" if "error" not in p else f"{p['when']}: {p['error']}"
            for p in peaks),
        f"- {args.rounds} round(s) per setting, ours and official alternating, each process the median of "
        f"{args.iters} step(s) after a warm-up; a row is the median over rounds (min: the fastest step seen)",
        "- ratio: ganserve time / official time for steps (below 1: ganserve is faster), ganserve images/s / "
        "official images/s for generate. % of peak: "
        + (f"against the best peak rate above ({peak:.0f} GFLOP/s)." if peak else "no peak was measured."),
        "",
    ]
    md += table(results, peak)
    md += ["", "Differences in what a step computes:", ""]
    for sc in dict.fromkeys(r["setting"]["scenario"] for r in results):
        md.append(f"- {sc}: {SCENARIO_NOTES[sc]}")
    md += ["", "GFLOP per step as counted in bench/official/side_by_side.py (GFLOP table): renders 90.7 / 150.8 "
           f"at 256 / 1024 px, ViT-B/32 image {GFLOP['vit_image']:.2f}, text prompt {GFLOP['text_prompt']:.2f}, "
           "NADA step 778 / 1259 at batch 2; invert and latent steps 2 x render + 2 x image (a lower bound); mapper "
           "edit batch x render, mapper training step 2 x (2 x render + 2 x image) (a lower bound).", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "peaks": peaks, "args": vars(args), "finished": finished,
                   "gflop_table": GFLOP, "results": results}, f, indent=1, default=str)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    env = os.environ.get
    p.add_argument("--nada-root", default=env("GANSERVE_NADA_ROOT"), help="rinongal/StyleGAN-nada checkout")
    p.add_argument("--clip-root", default=env("GANSERVE_CLIP_ROOT"), help="openai/CLIP checkout")
    p.add_argument("--rosinality-root", default=env("GANSERVE_ROSINALITY_ROOT"),
                   help="rosinality/stylegan2-pytorch checkout")
    p.add_argument("--styleclip-root", default=env("GANSERVE_STYLECLIP_ROOT"), help="orpatashnik/StyleCLIP checkout")
    p.add_argument("--e4e-root", default=env("GANSERVE_E4E_ROOT"),
                   help="omertov/encoder4editing checkout or git directory (encoder; optional)")
    p.add_argument("--oneshot-root", default=env("GANSERVE_ONESHOT_ROOT"),
                   help="cyclomon/OneshotCLIP checkout or git directory")
    p.add_argument("--ganserve-bench", default=env("GANSERVE_BENCH", os.path.join(REPO, "build", "bench",
                                                                                  "ganserve_bench")))
    p.add_argument("--ganctl", default=env("GANCTL", os.path.join(REPO, "build", "client", "ganctl")))
    p.add_argument("--vocab", help="CLIP BPE vocabulary for ganctl tokenize (official_bench.py's default if unset)")
    p.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
                   help="the interpreter with Debian's torch for the official code and the peak measurement")
    p.add_argument("--scenarios", default="all",
                   help="comma-separated: nada_step,generate,clip,invert_step,latent_opt_step,global_stats,oneshot,"
                        "mapper,encoder")
    p.add_argument("--iters", type=int, default=2, help="timed steps per process, after one warm-up")
    p.add_argument("--rounds", type=int, default=2, help="ours/official alternations per setting")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--peak-reps", type=int, default=5)
    p.add_argument("--timeout", type=int, default=3600, help="seconds per process")
    p.add_argument("--resolutions", help="comma-separated: only the settings at these resolutions (and clip)")
    p.add_argument("--quick", action="store_true", help="256 px settings (and clip), --iters 1, one round")
    p.add_argument("--at-resolution", type=int,
                   help="run the chosen settings at this resolution instead (smoke tests; settings that then "
                        "coincide run once)")
    p.add_argument("--out", required=True, help="FILE.md; FILE.json is written beside it")
    a = p.parse_args()
    if a.quick:
        a.iters, a.rounds = 1, 1

    chosen = settings(a.quick)
    if a.scenarios != "all":
        wanted = [x.strip() for x in a.scenarios.split(",") if x.strip()]
        unknown = sorted(set(wanted) - set(NEEDS))
        if unknown:
            p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(NEEDS)}")
        chosen = [s for s in chosen if s["scenario"] in wanted]
    if a.resolutions:
        keep = {int(x) for x in a.resolutions.split(",") if x.strip()}
        chosen = [s for s in chosen if s["resolution"] in keep or s["resolution"] is None]
    if a.at_resolution:
        moved = []
        for s in chosen:
            s = dict(s, resolution=a.at_resolution if s["resolution"] else None)
            if s not in moved:
                moved.append(s)
        chosen = moved
    missing = sorted({r for s in chosen for r in NEEDS[s["scenario"]] if not getattr(a, r + "_root")})
    if missing:
        p.error("the chosen scenarios need " + ", ".join(f"--{r}-root (or GANSERVE_{r.upper()}_ROOT)"
                                                       for r in missing))
    tools = [a.ganserve_bench] + ([a.ganctl] if any(s["scenario"] != "oneshot" for s in chosen) else [])
    for tool in tools:  # the oneshot training never tokenizes: no ganctl
        if not os.access(tool, os.X_OK):
            p.error(f"{tool} is not an executable; build it or pass its path")

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    machine = machine_info(a.threads)
    peaks = []
    write_report(a.out, a, machine, peaks, [], finished=False)  # fails now, not after an hour, if unwritable
    peaks.append(dict(measure_peak(a.python, a.threads, a.peak_reps, a.timeout), when="start"))
    roots = []
    for r in ("nada", "clip", "rosinality", "styleclip"):
        if getattr(a, r + "_root"):
            roots += [f"--{r}-root", getattr(a, r + "_root")]
    oneshot_roots = ["--oneshot-root", a.oneshot_root or "", "--clip-root", a.clip_root or ""]
    mapper_roots = []  # mapper_bench.py has its own defaults for the ones not given
    for r in ("styleclip", "clip"):
        if getattr(a, r + "_root"):
            mapper_roots += [f"--{r}-root", getattr(a, r + "_root")]
    encoder_roots = []  # encoder_bench.py has its own defaults for the ones not given
    for r in ("e4e", "styleclip"):
        if getattr(a, r + "_root"):
            encoder_roots += [f"--{r}-root", getattr(a, r + "_root")]
    results = []
    for s in chosen:
        common = ["--scenario", s["scenario"], "--batch", str(s["batch"]), "--iters", str(a.iters),
                  "--threads", str(a.threads)]
        if s["resolution"]:
            common += ["--resolution", str(s["resolution"])]
        if s["auto_layer_k"]:
            common += ["--auto-layer-k", str(s["auto_layer_k"])]
        ours_cmd = [a.ganserve_bench] + common
        script, script_roots = {"oneshot": ("oneshot_bench.py", oneshot_roots),
                                "mapper": ("mapper_bench.py", mapper_roots),
                                "encoder": ("encoder_bench.py", encoder_roots)}.get(s["scenario"],
                                                                                ("official_bench.py", roots))
        theirs_cmd = ([a.python, os.path.join(HERE, script)] + common + script_roots + ["--ganctl", a.ganctl]
                      + (["--vocab", a.vocab] if a.vocab else []))
        entry = {"setting": s, "ours": [], "official": []}
        results.append(entry)
        for _ in range(a.rounds):
            entry["ours"].append(run(ours_cmd, a.timeout))
            entry["official"].append(run(theirs_cmd, a.timeout))
        write_report(a.out, a, machine, peaks, results, finished=False)
    peaks.append(dict(measure_peak(a.python, a.threads, a.peak_reps, a.timeout), when="end"))
    machine["loadavg_end"] = os.getloadavg()
    write_report(a.out, a, machine, peaks, results, finished=True)
    print(f"wrote {a.out} and {os.path.splitext(a.out)[0]}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
