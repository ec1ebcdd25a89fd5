#!/usr/bin/python3
"""Times the official StyleGAN-NADA / rosinality code on this machine, for side-by-side runs.

--scenario nada_step is the counterpart of `ganserve_bench --scenario nada_step`: same configuration (config-f
generator at 256 or 1024 px with random weights, batch 2, one ViT-B/32-sized CLIP with
random weights, "photo" -> "pencil sketch", directional loss only, the default trainable
set, or adaptive layer selection with k layers and one iteration on 8 samples), same
LibTorch (Debian's python3-torch 1.13.1 is the build our C++ links), same BLAS, same
thread count. --scenario generate is the counterpart of `ganserve_bench --scenario
generate`: the official generator (sg2_model.Generator, rosinality's architecture) under
torch.no_grad() in eval mode, as the official generate.py samples, with the constant
noise buffers. Prints one JSON object like the C++ benchmark.

It runs the official sources as they are, from checkouts the caller provides (they are
not part of ganserve):

  --nada-root  a checkout of rinongal/StyleGAN-nada (uses ZSSGAN/model/ZSSGAN.py,
               ZSSGAN/model/sg2_model.py, ZSSGAN/criteria/clip_loss.py,
               ZSSGAN/utils/text_templates.py and ZSSGAN/op/)
  --clip-root  a checkout of openai/CLIP (uses clip/model.py)

Three things are adapted at run time, none of which changes the arithmetic of a step:
  * the hard-coded device string 'cuda:0' in ZSSGAN.py is replaced by --device;
  * torch.utils.cpp_extension.load (the CUDA kernels of op/) is replaced by a stub:
    on CPU the official op/ functions take their pure-PyTorch paths and never call it;
  * `clip` is a small module of this script: `load` builds the official CLIP class at
    ViT-B/32 (or B/16) size with random weights and the official preprocessing
    transforms, and `tokenize` asks `ganctl local tokenize` (our tokenizer matches
    OpenAI's on all reference prompts; the official one needs ftfy, which Debian lacks).
    The RN50 model that CLIPLoss also loads (for its texture loss, off by default) is
    not built.

Requires python3-torch, python3-torchvision, python3-pil (apt), a built ganctl.
"""

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

import torch

VIT_SIZES = {
    # name: (embed_dim, image_resolution, vision_layers, vision_width, patch, context,
    #        vocab, text_width, text_heads, text_layers), from OpenAI's released files.
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
}


def load_source(name, path, replace=None):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    for old, new in (replace or {}).items():
        if old not in source:
            sys.exit(f"{path}: expected to find {old!r} to adapt; is this the right checkout?")
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def stub_cuda_extensions():
    import torch.utils.cpp_extension as cpp_extension

    class Unbuilt:
        def __getattr__(self, attr):
            raise RuntimeError("the CUDA extension is not built here; CPU paths must not reach it")

    cpp_extension.load = lambda *args, **kwargs: Unbuilt()


def install_clip_module(clip_root, ganctl, vocab):
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    model_py = os.path.join(clip_root, "clip", "model.py")
    if not os.path.exists(model_py):
        model_py = os.path.join(clip_root, "model.py")
    clip_model = load_source("clip_official_model", model_py)

    def preprocessing(n_px):
        # The official transform list; CLIPLoss keeps items [:2] (resize, crop) and [4:]
        # (normalize) and drops the PIL conversions.
        return transforms.Compose([
            transforms.Resize(n_px, interpolation=InterpolationMode.BICUBIC),
            transforms.CenterCrop(n_px),
            lambda image: image.convert("RGB"),
            transforms.ToTensor(),
            transforms.Normalize((0.48145466, 0.4578275, 0.40821073),
                                 (0.26862954, 0.26130258, 0.27577711)),
        ])

    def load(name, device="cpu", jit=False):
        if name not in VIT_SIZES:
            return None, preprocessing(224)  # RN50 for the texture loss: unused here
        model = clip_model.CLIP(*VIT_SIZES[name]).to(device)
        if str(device) == "cpu":
            model.float()
        return model.eval(), preprocessing(model.visual.input_resolution)

    def tokenize(texts, context_length=77, truncate=False):
        if isinstance(texts, str):
            texts = [texts]
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
            with open(src, "w", encoding="utf-8") as f:
                json.dump(list(texts), f)
            cmd = [ganctl, "local", "tokenize", "--vocab", vocab, "--texts-json", src, "--out-json", dst]
            if truncate:
                cmd.append("--truncate")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(dst, encoding="utf-8") as f:
                return torch.tensor(json.load(f), dtype=torch.long)

    module = types.ModuleType("clip")
    module.load, module.tokenize, module.model = load, tokenize, clip_model
    sys.modules["clip"] = module


def blas_in_use():
    with open("/proc/self/maps", encoding="utf-8") as f:
        paths = {line.split()[-1] for line in f if any(k in line for k in ("blas", "lapack", "blis"))}
    return ", ".join(sorted(paths)) or "unknown"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=["nada_step", "generate"], default="nada_step")
    p.add_argument("--nada-root", required=True)
    p.add_argument("--clip-root", help="required for nada_step")
    p.add_argument("--vocab", default=os.path.join(root, "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz"))
    p.add_argument("--ganctl", default=os.path.join(root, "build", "client", "ganctl"))
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--auto-layer-k", type=int, default=0)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--device", default="cpu")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    stub_cuda_extensions()
    sys.path.insert(0, a.nada_root)
    sys.path.insert(0, os.path.join(a.nada_root, "ZSSGAN"))  # sg2_model imports `op`
    sys.modules.setdefault("ZSSGAN.legacy", types.ModuleType("ZSSGAN.legacy"))  # StyleGAN3 pickles only
    import ZSSGAN  # noqa: F401  (the package, so the adapted module can sit inside it)
    from ZSSGAN.model import sg2_model
    if a.scenario == "generate":
        return bench_generate(a, sg2_model)
    if not a.clip_root:
        sys.exit("--clip-root is required for nada_step")
    install_clip_module(a.clip_root, a.ganctl, a.vocab)
    zssgan = load_source("ZSSGAN.model.ZSSGAN", os.path.join(a.nada_root, "ZSSGAN", "model", "ZSSGAN.py"),
                         replace={"'cuda:0'": repr(a.device)})

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "random.pt")
        g = sg2_model.Generator(a.resolution, 512, 8, channel_multiplier=2)
        torch.save({"g_ema": g.state_dict()}, ckpt)
        del g
        args = argparse.Namespace(
            size=a.resolution, frozen_gen_ckpt=ckpt, train_gen_ckpt=ckpt, sg3=False, sgxl=False,
            phase=None, lambda_direction=1.0, lambda_patch=0.0, lambda_global=0.0,
            lambda_manifold=0.0, lambda_texture=0.0, clip_models=["ViT-B/32"],
            clip_model_weights=[1.0], source_class="photo", target_class="pencil sketch",
            auto_layer_k=a.auto_layer_k, auto_layer_iters=1 if a.auto_layer_k > 0 else 0,
            auto_layer_batch=8, target_img_list=None, img2img_batch=16, mixing=0.0)
        net = zssgan.ZSSGAN(args)

    # The optimizer exactly as the official train.py builds it.
    g_reg_ratio = 4 / 5
    g_optim = torch.optim.Adam(net.generator_trainable.parameters(), lr=0.002 * g_reg_ratio,
                               betas=(0 ** g_reg_ratio, 0.99 ** g_reg_ratio))
    secs = []
    for i in range(a.iters + 1):  # the first step (text direction, allocations) is warm-up
        t0 = time.perf_counter()
        sample_z = [torch.randn(a.batch, 512, device=a.device)]
        [_, _], loss = net(sample_z)
        net.zero_grad()
        loss.backward()
        g_optim.step()
        if i > 0:
            secs.append(time.perf_counter() - t0)
    clip_params = [q for m in net.clip_loss_models.values() for q in m.model.parameters()]
    report(a, secs, auto_layer_k=a.auto_layer_k, loss=float(loss),
           clip_params_given_gradients=f"{sum(q.grad is not None for q in clip_params)}/{len(clip_params)}")


def bench_generate(a, sg2_model):
    g = sg2_model.Generator(a.resolution, 512, 8, channel_multiplier=2).to(a.device).eval()
    secs = []
    with torch.no_grad():
        for i in range(a.iters + 1):  # the first render is warm-up
            t0 = time.perf_counter()
            z = torch.randn(a.batch, 512, device=a.device)
            image, _ = g([z], randomize_noise=False)
            image.clamp(-1, 1)
            if i > 0:
                secs.append(time.perf_counter() - t0)
    report(a, secs, images_per_s=a.batch / statistics.median(secs))


def report(a, secs, **extra):
    print(json.dumps({
        "scenario": a.scenario + "_official", "resolution": a.resolution, "batch": a.batch,
        "median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
        "iters": len(secs), "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": blas_in_use(), "torch": torch.__version__, **extra}))


if __name__ == "__main__":
    main()
