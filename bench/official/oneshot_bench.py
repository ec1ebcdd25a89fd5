#!/usr/bin/python3
"""Times the official OneshotCLIP training (cyclomon/OneshotCLIP) for `ganserve_bench --scenario oneshot`.

It runs the official train_oneshot.py as a script (its __main__ block builds the models
and optimizers, then calls its train()) on a copy of the official sources in a temporary
folder, with the arguments that make its loop do what the C++ scenario times:

  --init_iter N+1   reference-search steps: the first is the warm-up, N are timed
  --iter 2(N+1)     fine-tuning iterations with --ref_freq 2: even i align G(w_ref) with
                    the target (global discriminator, LPIPS + MSE), odd i are the random
                    kind (mixed z, patch discriminator, consistency and patch CLIP losses
                    on 16 crops per image); i = 0 and 1 are the warm-ups (i = 0 also runs
                    the lazy R1, which the official runs every 16 iterations), so N <= 6
  --batch, --size   as given; config-f widths (style 512, 8 mapping layers, channel
                    multiplier 2): the script's defaults
  --img_freq, --save_freq  1e9: the script saves previews and w_ref only at step 0 (a
                    warm-up), no checkpoints

Each timed figure is the time from the start of one loop iteration to the start of the
next (what the official loop does per iteration, its data loading included: the official
reads and resizes the target JPEG from disk for every real batch). One JSON object on
stdout, like the C++ benchmark: the median, min and max per step kind, the default job
(1001 search steps, 2001 iterations of which 501 align) estimated from the medians, peak
RSS; the official code's own prints go to stderr.

Sources: --oneshot-root and --clip-root each take a checkout or a git directory (a bare
repository or mirror; `git archive REV` exports it, REV from --oneshot-rev / --clip-rev,
default HEAD). Either way the files are copied into a temporary folder, which the script
runs in (it writes samples/ and checkpoints/ and reads metrics/lpips_weights.ckpt
relative to the working directory). The target is the checkout's
oneshot_data/portrait1931/image_01931.jpg, as its run_train.sh trains on.

Run-time adaptations, none of which changes a step's arithmetic:
  * `device = "cuda"` becomes --device; LPIPS().cuda() in train() and the two .cuda() of
    metrics/lpips.py (ImageNet mean and std) become .to(device);
  * torch.utils.cpp_extension.load (op/'s CUDA kernels) is a stub: on CPU op/'s
    fused_leaky_relu and upfirdn2d take their pure-PyTorch paths and never call it;
  * `clip` is official_bench.py's module: clip.load builds openai/CLIP's model.py CLIP
    at ViT-B/32 size with random weights (eval mode, weights requiring grad, as clip.load
    returns them; the training never tokenizes);
  * torchvision's alexnet(pretrained=True) in metrics/lpips.py builds with random
    weights (the official downloads ImageNet weights); the LPIPS heads load from the
    checkout's metrics/lpips_weights.ckpt; no --ckpt: the generators and the
    discriminator keep their random initialisation;
  * tqdm (around the fine-tuning loop) is official_bench.py's step timer, and the
    reference-search loop header `for ii in range(args.init_iter):` is wrapped in a timer
    of the same kind; `packaging` (imported by model.py, never used) is a stub when not
    installed.

Requires python3-torch, python3-torchvision, python3-pil, python3-numpy (apt) and git.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official_bench as ob  # noqa: E402  (helpers shared with the other official benches)

TARGET = os.path.join("oneshot_data", "portrait1931", "image_01931.jpg")


def is_git_dir(path):
    return os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))


def export_sources(src, rev, dest):
    """Copies a checkout (or exports REV of a git directory) to `dest`; returns the commit or None."""
    os.makedirs(dest)
    if is_git_dir(src):
        commit = subprocess.run(["git", "--git-dir", src, "rev-parse", rev], check=True, capture_output=True,
                                text=True).stdout.strip()
        archive = subprocess.run(["git", "--git-dir", src, "archive", "--format=tar", commit], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        return commit
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    try:
        return subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class LoopTimer:
    """Wraps a loop's iterable: records the time at which each iteration starts and the end."""

    def __init__(self, iterable):
        self.iterable = iterable
        self.marks = []

    def __iter__(self):
        for item in self.iterable:
            self.marks.append(time.perf_counter())
            yield item
        self.marks.append(time.perf_counter())


def durations(marks):
    return [t1 - t0 for t0, t1 in zip(marks, marks[1:])]


def random_alexnet():
    import torchvision.models

    alexnet = torchvision.models.alexnet

    def build(*args, pretrained=False, **kwargs):
        return alexnet(*args, weights=None, **kwargs)

    torchvision.models.alexnet = build


def run(a, tmp):
    root = os.path.join(tmp, "OneshotCLIP")
    clip_root = os.path.join(tmp, "CLIP")
    commits = {"oneshot": export_sources(a.oneshot_root, a.oneshot_rev, root),
               "clip": export_sources(a.clip_root, a.clip_rev, clip_root)}
    data = os.path.join(tmp, "target")
    os.makedirs(data)
    shutil.copy(os.path.join(root, TARGET), data)

    ob.stub_cuda_extensions()
    ob.stub_missing_modules(["packaging.version"])
    random_alexnet()
    ob.install_clip_module(clip_root, a.ganctl, a.vocab)
    ob.install_step_timer()
    dev = repr(a.device)
    sys.path.insert(0, root)
    ob.load_source("metrics.lpips", os.path.join(root, "metrics", "lpips.py"),
                   replace={".view(1, 3, 1, 1).cuda()": f".view(1, 3, 1, 1).to({dev})"})

    n = a.iters
    search = LoopTimer(None)

    def reference_search_timer(iterable):
        search.iterable = iterable
        return search

    script = os.path.join(root, "train_oneshot.py")
    source = ob.adapted_source(script, replace={
        'device = "cuda"': f"device = {dev}",
        "calc_lpips = LPIPS().cuda()": "calc_lpips = LPIPS().to(device)",
        "for ii in range(args.init_iter):": "for ii in _reference_search_timer(range(args.init_iter)):",
    })
    argv = ["--data_path", data, "--exp", "bench", "--size", str(a.resolution), "--batch", str(a.batch),
            "--init_iter", str(n + 1), "--iter", str(2 * (n + 1)), "--ref_freq", "2",
            "--img_freq", "1000000000", "--save_freq", "1000000000"]
    scope = {"__name__": "__main__", "__file__": script, "_reference_search_timer": reference_search_timer}
    ob.StepTimer.marks = []
    saved_argv, cwd = sys.argv, os.getcwd()
    sys.argv = [script] + argv
    os.chdir(root)
    try:
        exec(compile(source, script, "exec"), scope)
        sys.exit(f"{script} ended without finishing its loop")
    except ob.StepsDone:
        pass
    finally:
        sys.argv = saved_argv
        os.chdir(cwd)

    search_s = durations(search.marks)[1:]
    tune = durations(ob.StepTimer.marks)
    reference_s, random_s = tune[2::2], tune[3::2]
    if len(search_s) != n or len(reference_s) != n or len(random_s) != n:
        sys.exit(f"expected {n} timed steps of each kind, got {len(search_s)}, {len(reference_s)}, {len(random_s)}")
    out = {"reference_search": ob.stats(search_s), "fine_tune_reference": ob.stats(reference_s),
           "fine_tune_random": ob.stats(random_s),
           "warmups_s": {"reference_search": durations(search.marks)[0], "fine_tune_reference_with_r1": tune[0],
                         "fine_tune_random": tune[1]}}
    out["default_job_estimate_s"] = (1001 * out["reference_search"]["median_s"]
                                     + 501 * out["fine_tune_reference"]["median_s"]
                                     + 1500 * out["fine_tune_random"]["median_s"])
    clip_params = list(scope["clip_model"].parameters())
    out["clip_params_given_gradients"] = f"{sum(p.grad is not None for p in clip_params)}/{len(clip_params)}"
    out["ref_every"] = 2
    out["commits"] = commits
    return out


def main():
    repo = os.path.dirname(os.path.dirname(HERE))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    p.add_argument("--oneshot-root", default=env("GANSERVE_ONESHOT_ROOT"),
                   help="cyclomon/OneshotCLIP: a checkout or a git directory")
    p.add_argument("--oneshot-rev", default="HEAD", help="the commit to export when --oneshot-root is a git directory")
    p.add_argument("--clip-root", default=env("GANSERVE_CLIP_ROOT"), help="openai/CLIP: a checkout or a git directory")
    p.add_argument("--clip-rev", default="HEAD")
    p.add_argument("--vocab", default=os.path.join(repo, "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz"),
                   help="unused by this training (it never tokenizes); passed to the clip module")
    p.add_argument("--ganctl", default=os.path.join(repo, "build", "client", "ganctl"))
    p.add_argument("--scenario", default="oneshot", choices=["oneshot"], help="for side_by_side.py's common arguments")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iters", type=int, default=2, help="timed steps of each kind, after one warm-up each (<= 6)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if not a.oneshot_root or not a.clip_root:
        p.error("needs --oneshot-root and --clip-root (or GANSERVE_ONESHOT_ROOT and GANSERVE_CLIP_ROOT)")
    if not 1 <= a.iters <= 6:
        p.error("--iters must be 1..6 (iteration 16 runs the lazy R1)")

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        result = run(a, tmp)
    print(json.dumps({
        "scenario": "oneshot_official", "resolution": a.resolution, "batch": a.batch, **result,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": ob.blas_in_use(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
