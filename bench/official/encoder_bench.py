#!/usr/bin/python3
"""Times the official encoder4editing inference (omertov/encoder4editing) for
`ganserve_bench --scenario encoder`.

Two figures, each the median, min and max of --iters timed calls after one warm-up, as
the C++ scenario reports them:

  encode  net.encoder(x) under no_grad: the official Encoder4Editing(50, 'ir_se') on
          `--batch` random 256 x 256 images.
  invert  scripts/inference.py's run_on_batch on one image: under no_grad,
          net(x, randomize_noise=False, return_latents=True) -- the encoder, latent_avg,
          the decoder's render at --resolution with its stored noise maps and the
          official face_pool to 256 px. (ganserve's "invert" instead measures PSNR
          against the photo at up to 256 px: comparable work.)

`net` is the official pSp(opts) as scripts/inference.py builds it (encoder_type
Encoder4Editing, stylegan_size RES, start_from_latent_avg, eval(), on --device), loading a
checkpoint written here the way e4e's training coach saves one ({'state_dict',
'opts', 'latent_avg'}) from the official modules' own random initialisation: the values
do not change the speed; no weights are downloaded.

Sources: --e4e-root (checkout or git directory; default $GANSERVE_E4E_ROOT, else the
mirror /work/.mirror/omertov+encoder4editing/repo) for models/; e4e's models/stylegan2/op
compiles CUDA kernels at import, so its op package comes from --styleclip-root's copy of
the same rosinality code (pure PyTorch fused_leaky_relu and upfirdn2d; default
$GANSERVE_STYLECLIP_ROOT, else /work/.mirror/orpatashnik+StyleCLIP/repo).
Run-time adaptations, none of which changes the arithmetic: that op package's
`input.cuda()` becomes `input.to(device)`; matplotlib, which models/psp.py imports only to
pick a backend, is a stand-in module when not installed.

Prints one JSON object on stdout like the C++ benchmark (encode, encode_images_per_s,
invert, peak RSS). Requires python3-torch, python3-numpy (apt) and git. --ganctl and
--vocab are accepted (side_by_side.py passes them to every script) and unused.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mapper_bench import default_root, export_sources, sync, time_calls  # noqa: E402
import official_bench as ob  # noqa: E402

E4E_MIRROR = "/work/.mirror/omertov+encoder4editing/repo"
STYLECLIP_MIRROR = "/work/.mirror/orpatashnik+StyleCLIP/repo"


def run(a, tmp):
    root = os.path.join(tmp, "e4e")
    commits = {"e4e": export_sources(a.e4e_root, a.e4e_rev, root, ["models", "configs"])}
    op_src = os.path.join(tmp, "styleclip")
    commits["op"] = export_sources(a.styleclip_root, a.styleclip_rev, op_src, ["models/stylegan2/op"])
    op_dir = os.path.join(root, "models", "stylegan2", "op")
    for name in os.listdir(op_dir):
        os.remove(os.path.join(op_dir, name))
    for name in ("__init__.py", "fused_act.py", "upfirdn2d.py"):
        with open(os.path.join(op_src, "models", "stylegan2", "op", name)) as f:
            text = f.read()
        with open(os.path.join(op_dir, name), "w") as f:
            f.write(text.replace("input = input.cuda()", f"input = input.to({a.device!r})"))
    if "matplotlib" not in sys.modules:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.modules["matplotlib"] = types.SimpleNamespace(use=lambda *args, **kwargs: None)
    sys.path.insert(0, root)
    from models.encoders.psp_encoders import Encoder4Editing
    from models.stylegan2.model import Generator
    from models.psp import pSp

    opts = types.SimpleNamespace(stylegan_size=a.resolution, encoder_type="Encoder4Editing",
                                 start_from_latent_avg=True, device=a.device, checkpoint_path=None)
    styles = Encoder4Editing(50, "ir_se", opts)
    decoder = Generator(a.resolution, 512, 8, channel_multiplier=2)
    state = {**{f"encoder.{k}": v for k, v in styles.state_dict().items()},
             **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
    ckpt = os.path.join(tmp, "e4e_random.pt")
    with torch.no_grad():
        latent_avg = decoder.mean_latent(4096).repeat(styles.style_count, 1)
    torch.save({"state_dict": state, "opts": dict(vars(opts), checkpoint_path=ckpt), "latent_avg": latent_avg}, ckpt)
    del styles, decoder, state
    net = pSp(types.SimpleNamespace(**dict(vars(opts), checkpoint_path=ckpt))).eval().to(a.device)
    os.remove(ckpt)
    g = torch.Generator().manual_seed(12)
    x = (torch.randn(a.batch, 3, 256, 256, generator=g) * 0.5).clamp(-1, 1).to(a.device)

    with torch.no_grad():
        encode, _ = time_calls(a.iters, a.device, lambda: net.encoder(x))
        invert, _ = time_calls(a.iters, a.device, lambda: net(x[:1], randomize_noise=False, return_latents=True))
    out = {"scenario": "encoder", "resolution": a.resolution, "batch": a.batch, "device": a.device,
           "threads": torch.get_num_threads(), "encode": ob.stats(encode),
           "encode_images_per_s": a.batch / ob.stats(encode)["median_s"], "invert": ob.stats(invert),
           "encoder_parameters_m": sum(p.numel() for p in net.encoder.parameters()) / 1e6,
           "commits": commits, "torch_version": torch.__version__,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    sync(a.device)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="encoder", choices=["encoder"])
    p.add_argument("--resolution", type=int, default=1024)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--device", default="cpu")
    p.add_argument("--e4e-root", default=default_root("GANSERVE_E4E_ROOT", E4E_MIRROR))
    p.add_argument("--e4e-rev", default="HEAD")
    p.add_argument("--styleclip-root", default=default_root("GANSERVE_STYLECLIP_ROOT", STYLECLIP_MIRROR))
    p.add_argument("--styleclip-rev", default="HEAD")
    p.add_argument("--ganctl", help="unused")
    p.add_argument("--vocab", help="unused")
    a = p.parse_args()
    if not a.e4e_root or not a.styleclip_root:
        p.error("need --e4e-root and --styleclip-root (checkouts or git directories)")
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="e4e_bench_") as tmp:
        print(json.dumps(run(a, tmp)))


if __name__ == "__main__":
    main()
