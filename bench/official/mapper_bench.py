#!/usr/bin/python3
"""Times the official StyleCLIP latent mapper (orpatashnik/StyleCLIP mapper/) for `ganserve_bench --scenario mapper`.

Three figures, each the median, min and max of --iters timed calls after one warm-up,
as the C++ scenario reports them:

  edit            mapper/scripts/inference.py's run_on_batch(w, net) on `--batch` w+
                  latents: under no_grad, w_hat = w + 0.1 * net.mapper(w) and one
                  net.decoder([w_hat], input_is_latent=True, return_latents=True,
                  randomize_noise=False, truncation=1) render of them. `net` is built as
                  inference.py's run builds it: StyleCLIPMapper(opts), net.eval(), moved to
                  the device; here from the training options rather than a checkpoint, so
                  the decoder loads the random g_ema below and the mapper keeps its own
                  random initialisation (LevelsMapper, the default).
  mapper_forward  net.mapper(w) alone under no_grad, same net and latents.
                  (On CUDA each timed call of these two ends with a device synchronisation.)
  train_step      one iteration of the official training loop, Coach.train() of
                  mapper/training/coach.py, run through mapper/scripts/train.py's main(opts)
                  with opts parsed by the official TrainOptions parser from:
                    --exp_dir TMP/exp --description "purple hair" --id_lambda 0
                    --stylegan_size RES --stylegan_weights TMP/random.pt --batch_size 2
                    --latents_train_path TMP/train.pt --latents_test_path TMP/test.pt
                    --max_steps N+1 --image_interval/--board_interval/--val_interval/
                    --save_interval 1000000000 --workers W --test_workers W
                  and otherwise the official defaults (LevelsMapper, clip_lambda 1.0,
                  latent_l2_lambda 0.8, Ranger lr 0.5). One iteration, as the official
                  writes it: fetch a batch of 2 w+ latents from the DataLoader,
                  optimizer.zero_grad(), the source render x = decoder([w]) under no_grad
                  (the official renders it every step; with id_lambda 0 only the step-0
                  image log uses it), w_hat = w + 0.1 * mapper(w), the render x_hat,
                  calc_loss (CLIPLoss: upsample 7x nearest, AvgPool2d(RES // 32), 1 -
                  CLIP(image, text)[0] / 100 with the full CLIP forward, text tower
                  included; MSE(w_hat, w) * 0.8), loss.backward(), Ranger.step(), the
                  interval checks (none fires after step 0), global_step += 1.
                  The training batch is 2 whatever --batch is (the official default, and
                  the C++ scenario's).

What is timed in train_step: the train DataLoader is wrapped so that each iteration's
start (the moment its batch has been fetched) is recorded; an iteration's time is from
its start to the next iteration's start, so it holds the whole loop body and the next
batch's fetch. Global step 0 is the warm-up and is not timed: the official loop logs
images (torchvision save_image of x and x_hat), prints metrics, validates (its
first-step sanity check: 5 test batches of 1 latent, each two renders + CLIP loss +
an image file) and saves a checkpoint (iteration_0.pt) at step 0 whatever the
intervals are. Steps 1..N are timed. At the start of step N+1 (= max_steps, where the
official would train once more, validate on the whole test set, save and stop) the
harness ends the run, as official_bench.py's step timer ends its scripts. The train set
holds max(64, 2(N+2)) latents, so every timed step is in the first epoch (no DataLoader
restart in a timed interval).

Note on the work the official step does beyond the C++ one: the decoder's and CLIP's
weights require grad (StyleCLIPMapper never freezes its decoder and clip.load returns
trainable weights), so loss.backward() also computes the generator's and both CLIP
towers' weight gradients (only the mapper's are zeroed and stepped; the others
accumulate); the JSON's *_params_given_gradients show it. The CLIP text tower runs
every step and the source image x is rendered every step.

Latents: the official random-latent path of Coach.configure_datasets refers to
self.net.latent_avg, which StyleCLIPMapper never defines, so it cannot run; the harness
writes the latent files the official --latents_*_path expect instead: [N, n_latent, 512]
w+ latents made the way that path intends, w = avg + 0.7 (mapping(z) - avg) with the
random generator's mapping network and avg = its mean_latent(4096), repeated over the
n_latent rows. The edit latents are the first --batch of the training latents.

Sources: --styleclip-root and --clip-root each take a checkout or a git directory (a
bare repository or mirror; `git archive REV` exports it, REV from --styleclip-rev /
--clip-rev, default HEAD). Either way the files are copied into a temporary folder and
run from there (only the folders it runs: mapper/, criteria/ and models/ of StyleCLIP,
clip/ of CLIP; the StyleCLIP mirror lacks some large blobs elsewhere, so a whole-tree
`git archive` fails there); the defaults are $GANSERVE_STYLECLIP_ROOT / $GANSERVE_CLIP_ROOT, else
the mirrors /work/.mirror/orpatashnik+StyleCLIP/repo and /work/.mirror/openai+CLIP/repo
when they exist.

Run-time adaptations, none of which changes a step's arithmetic:
  * hard-coded CUDA devices become --device: `self.device = 'cuda:0'` and
    `clip.tokenize(...).cuda()` in coach.py (the latter `.to(self.device)`),
    `device="cuda"` in criteria/clip_loss.py, and `input = input.cuda()` in
    models/stylegan2/op/fused_act.py becomes `input = input.to(device)` (the identity
    for a tensor already there, so on CPU the .cuda() is simply gone);
  * `clip` is official_bench.py's module: clip.load("ViT-B/32") builds openai/CLIP's
    model.py CLIP at ViT-B/32 size with random weights (eval mode, float32 on CPU,
    weights requiring grad as clip.load returns them); clip.tokenize asks `ganctl local
    tokenize` once, in Coach.__init__ (outside every timed region);
  * no --stylegan_weights download: the official Generator(RES, 512, 8) with its own
    random initialisation is saved as {'g_ema': state_dict} and loaded by the official
    StyleCLIPMapper.load_weights; no --checkpoint_path;
  * torch.utils.tensorboard.SummaryWriter is a no-op stand-in when tensorboard is not
    installed (Coach logs to it at step 0 only); tqdm, imported by inference.py but not
    called by run_on_batch, is an import-only stub when not installed;
  * --workers / --test_workers default to 0 here (the official defaults are 4 and 2
    worker processes): the batch is read in the main process instead of a worker, the
    same indexing of an in-memory tensor and the same collate, without extra processes
    on a small machine; pass --workers 4 for the official setting;
  * Coach.train is wrapped (the wrapper installs the iteration timer on
    self.train_dataloader, then calls the official train) and the run ends at step
    N+1 as described above.
Surprises met on the way (not adapted): torchvision >= 0.13 ignores save_image's
`range=(-1, 1)` keyword (renamed value_range), so the step-0 image logs are min/max
normalised; Ranger uses deprecated add_/addcmul_ overloads (warnings on stderr, same
arithmetic).

Prints one JSON object on stdout like the C++ benchmark (edit, mapper_forward,
train_step, edit_images_per_s, train_steps_per_s, peak RSS); the official code's own
prints go to stderr.

Requires python3-torch, python3-torchvision, python3-numpy (apt), git and a built ganctl.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official_bench as ob  # noqa: E402  (helpers shared with the other official benches)
from oneshot_bench import is_git_dir  # noqa: E402

STYLECLIP_MIRROR = "/work/.mirror/orpatashnik+StyleCLIP/repo"
CLIP_MIRROR = "/work/.mirror/openai+CLIP/repo"
NEVER = "1000000000"  # interval that no timed step reaches
TEST_LATENTS = 5  # the official validation's step-0 sanity check reads 5 batches


def export_sources(src, rev, dest, paths):
    """Copies `paths` of a checkout (or exports them from REV of a git directory) to `dest`;
    returns the commit or None. Only the folders the benchmark runs: a mirror may lack
    the blobs of large files elsewhere in the tree (StyleCLIP's global_directions/npy)."""
    os.makedirs(dest)
    if is_git_dir(src):
        commit = subprocess.run(["git", "--git-dir", src, "rev-parse", rev + "^{commit}"], check=True,
                                capture_output=True, text=True).stdout.strip()
        archive = subprocess.run(["git", "--git-dir", src, "archive", "--format=tar", commit, *paths], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        return commit
    for path in paths:
        shutil.copytree(os.path.join(src, path), os.path.join(dest, path), ignore=shutil.ignore_patterns(".git"))
    try:
        return subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def default_root(env_name, mirror):
    value = os.environ.get(env_name)
    if value:
        return value
    return mirror if os.path.isdir(mirror) else None


def stub_tensorboard():
    if importlib.util.find_spec("tensorboard") is not None:
        return

    class SummaryWriter:  # Coach.log_metrics calls add_scalar (step 0 and validation only)
        def __init__(self, *args, **kwargs):
            pass

        def add_scalar(self, *args, **kwargs):
            pass

        def flush(self):
            pass

        def close(self):
            pass

    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = SummaryWriter
    sys.modules["torch.utils.tensorboard"] = module


class IterationTimer:
    """Stands in for Coach.train_dataloader: yields the official DataLoader's batches and
    records (global_step, time) as each iteration starts; ends the run (StepsDone) at the
    start of iteration `stop_at`."""

    def __init__(self, loader, coach, stop_at):
        self.loader, self.coach, self.stop_at = loader, coach, stop_at
        self.marks = []

    def __iter__(self):
        for batch in self.loader:
            self.marks.append((self.coach.global_step, time.perf_counter()))
            if self.coach.global_step >= self.stop_at:
                raise ob.StepsDone()
            yield batch

    def __len__(self):
        return len(self.loader)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_calls(iters, device, fn):
    """One warm-up call, then `iters` timed ones: (seconds of each timed call, warm-up)."""
    secs = []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        fn()
        sync(device)
        secs.append(time.perf_counter() - t0)
    return secs[1:], secs[0]


def run(a, tmp):
    root = os.path.join(tmp, "StyleCLIP")
    clip_root = os.path.join(tmp, "CLIP")
    commits = {"styleclip": export_sources(a.styleclip_root, a.styleclip_rev, root, ["mapper", "criteria", "models"]),
               "clip": export_sources(a.clip_root, a.clip_rev, clip_root, ["clip"])}

    stub_tensorboard()
    ob.stub_missing_modules(["tqdm"])
    ob.install_clip_module(clip_root, a.ganctl, a.vocab)
    dev = repr(a.device)
    sys.path.insert(0, root)
    ob.load_source("models.stylegan2.op.fused_act", os.path.join(root, "models", "stylegan2", "op", "fused_act.py"),
                   replace={"input = input.cuda()": f"input = input.to({dev})"})
    ob.load_source("criteria.clip_loss", os.path.join(root, "criteria", "clip_loss.py"),
                   replace={'device="cuda"': f"device={dev}"})
    coach_mod = ob.load_source(
        "mapper.training.coach", os.path.join(root, "mapper", "training", "coach.py"),
        replace={"self.device = 'cuda:0'": f"self.device = {dev}",
                 "torch.cat([clip.tokenize(self.opts.description)]).cuda()":
                     "torch.cat([clip.tokenize(self.opts.description)]).to(self.device)"})
    train_script = ob.load_source("styleclip_mapper_train", os.path.join(root, "mapper", "scripts", "train.py"))
    inference = ob.load_source("styleclip_mapper_inference", os.path.join(root, "mapper", "scripts", "inference.py"))
    from models.stylegan2.model import Generator
    from mapper.options.train_options import TrainOptions
    from mapper.styleclip_mapper import StyleCLIPMapper

    n = a.iters
    torch.manual_seed(0)
    weights = os.path.join(tmp, "random.pt")
    train_path, test_path = os.path.join(tmp, "train.pt"), os.path.join(tmp, "test.pt")
    n_train = max(64, 2 * (n + 2))
    g = Generator(a.resolution, 512, 8)
    torch.save({"g_ema": g.state_dict()}, weights)
    with torch.no_grad():
        avg = g.mean_latent(4096)
        w = avg + 0.7 * (g.style(torch.randn(n_train + TEST_LATENTS, 512)) - avg)
        wplus = w.unsqueeze(1).repeat(1, g.n_latent, 1)
    torch.save(wplus[:n_train].clone(), train_path)
    torch.save(wplus[n_train:].clone(), test_path)
    n_latent = g.n_latent
    del g, w

    argv = ["--exp_dir", os.path.join(tmp, "exp"), "--description", a.description, "--id_lambda", "0",
            "--stylegan_size", str(a.resolution), "--stylegan_weights", weights, "--batch_size", "2",
            "--latents_train_path", train_path, "--latents_test_path", test_path, "--max_steps", str(n + 1),
            "--image_interval", NEVER, "--board_interval", NEVER, "--val_interval", NEVER,
            "--save_interval", NEVER, "--workers", str(a.workers), "--test_workers", str(a.workers)]

    # edit and mapper_forward: the net as inference.py's run builds it, run_on_batch.
    net = StyleCLIPMapper(TrainOptions().parser.parse_args(argv))
    net.eval()
    net.to(a.device)
    w = wplus[: a.batch].to(a.device)
    edit_s, edit_warm = time_calls(n, a.device, lambda: inference.run_on_batch(w, net))

    def mapper_forward():
        with torch.no_grad():
            net.mapper(w)

    forward_s, forward_warm = time_calls(n, a.device, mapper_forward)
    net = None  # frees the edit net before the training builds its own

    # train_step: train.py's main(opts) -> Coach(opts).train(), with the iteration timer.
    official_train = coach_mod.Coach.train
    held = {}

    def timed_train(self):
        held["coach"] = self
        held["timer"] = self.train_dataloader = IterationTimer(self.train_dataloader, self, n + 1)
        if len(self.train_dataloader) < n + 2:
            sys.exit(f"the train set gives {len(self.train_dataloader)} batches an epoch, fewer than {n + 2}")
        return official_train(self)

    coach_mod.Coach.train = timed_train
    opts = TrainOptions().parser.parse_args(argv)
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        train_script.main(opts)
        sys.exit("the official training ended before the timed steps did")
    except ob.StepsDone:
        pass
    finally:
        os.chdir(cwd)
        coach_mod.Coach.train = official_train

    marks = held["timer"].marks
    steps = [s for s, _ in marks]
    if steps != list(range(n + 2)):
        sys.exit(f"expected iterations 0..{n + 1} in one epoch, saw global steps {steps}")
    times = [t for _, t in marks]
    durations = [t1 - t0 for t0, t1 in zip(times, times[1:])]
    coach = held["coach"]
    decoder_params = list(coach.net.decoder.parameters())
    clip_params = list(coach.clip_loss.model.parameters())
    mapper_params = list(coach.net.mapper.parameters())
    out = {"edit": ob.stats(edit_s), "mapper_forward": ob.stats(forward_s), "train_step": ob.stats(durations[1:])}
    out["edit_images_per_s"] = a.batch / out["edit"]["median_s"]
    out["train_steps_per_s"] = 1 / out["train_step"]["median_s"]
    out["warmups_s"] = {"edit": edit_warm, "mapper_forward": forward_warm,
                        "train_step_0_with_logs_validation_checkpoint": durations[0]}
    out["train_batch"] = opts.batch_size
    out["n_latent"] = n_latent
    out["mapper_type"] = opts.mapper_type
    out["optimizer"] = f"{opts.optim_name} lr {opts.learning_rate}"
    out["mapper_params_given_gradients"] = f"{sum(p.grad is not None for p in mapper_params)}/{len(mapper_params)}"
    out["decoder_params_given_gradients"] = f"{sum(p.grad is not None for p in decoder_params)}/{len(decoder_params)}"
    out["clip_params_given_gradients"] = f"{sum(p.grad is not None for p in clip_params)}/{len(clip_params)}"
    out["dataloader_workers"] = a.workers
    out["commits"] = commits
    return out


def main():
    repo = os.path.dirname(os.path.dirname(HERE))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--styleclip-root", default=default_root("GANSERVE_STYLECLIP_ROOT", STYLECLIP_MIRROR),
                   help="orpatashnik/StyleCLIP: a checkout or a git directory")
    p.add_argument("--styleclip-rev", default="HEAD", help="the commit to export when --styleclip-root is a git directory")
    p.add_argument("--clip-root", default=default_root("GANSERVE_CLIP_ROOT", CLIP_MIRROR),
                   help="openai/CLIP: a checkout or a git directory")
    p.add_argument("--clip-rev", default="HEAD")
    p.add_argument("--vocab", default=os.path.join(repo, "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz"),
                   help="CLIP BPE vocabulary for ganctl tokenize (the prompt is tokenized once, untimed)")
    p.add_argument("--ganctl", default=os.path.join(repo, "build", "client", "ganctl"))
    p.add_argument("--description", default="purple hair", help="the training prompt (--description)")
    p.add_argument("--scenario", default="mapper", choices=["mapper"], help="for side_by_side.py's common arguments")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=1, help="latents per edit (the training batch is always 2)")
    p.add_argument("--iters", type=int, default=5, help="timed calls of each figure, after one warm-up")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes (--workers and --test_workers; the official defaults are 4, 2)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if not a.styleclip_root or not a.clip_root:
        p.error("needs --styleclip-root and --clip-root (or GANSERVE_STYLECLIP_ROOT and GANSERVE_CLIP_ROOT)")
    if a.iters < 1 or a.batch < 1:
        p.error("--iters and --batch must be positive")
    if a.resolution < 32 or a.resolution & (a.resolution - 1):
        p.error("--resolution must be a power of two >= 32 (CLIPLoss pools by resolution // 32)")

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        result = run(a, tmp)
    print(json.dumps({
        "scenario": "mapper_official", "resolution": a.resolution, "batch": a.batch, **result,
        "threads": torch.get_num_threads(), "device": a.device,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": ob.blas_in_use(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
