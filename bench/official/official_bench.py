#!/usr/bin/python3
"""Times the official StyleGAN-NADA / StyleCLIP / rosinality / CLIP code on this machine, for side-by-side runs.

Each --scenario is the counterpart of the `ganserve_bench` scenario of the same name, on
the same configuration: random weights at the official sizes (config-f generator, style
512, 8 mapping layers; CLIP at ViT-B/32 size), the same LibTorch (Debian's python3-torch
1.13.1 is the build our C++ links), the same BLAS and thread count. It prints one JSON
object on stdout like the C++ benchmark (the official code's own prints go to stderr):
medians of --iters steps after one warm-up step.

  nada_step        StyleGAN-NADA's training step: ZSSGAN.forward (frozen and trainable
                   generators, CLIPLoss's directional loss) + backward + Adam exactly as
                   its train.py builds it; batch 2, "photo" -> "pencil sketch", optionally
                   adaptive layer selection (k layers, one iteration on 8 samples).
  generate         ZSSGAN/model/sg2_model.Generator (rosinality's architecture) under
                   no_grad in eval mode with its constant noise, as generate.py samples.
  clip             openai/CLIP model.py's CLIP: encode_image of a random batch under
                   no_grad, encode_image + backward to the input, and encode_text of the
                   79 imagenet templates of "photo" (NADA's text_templates.py) under
                   no_grad. The input-gradient figure freezes CLIP's weights, as ours;
                   `encode_image_with_input_and_weight_grads` is the model as clip.load
                   returns it (weights require grad), which is what NADA's and StyleCLIP's
                   losses run. Our encode_text times 79 fixed 13-token prompts: CLIP's text
                   tower always runs all 77 positions, so the work is the same.
  invert_step      rosinality's projector.py, run as a script: one step of its loop
                   (latent noise, render, LPIPS + MSE + noise regularisation, backward,
                   Adam, noise_normalize_), with --w_plus and --mse 1 as ours (its MSE is
                   computed every step whatever the weight), on a grey target image, with
                   rosinality's own model.py Generator. Differs from ours in the perceptual
                   loss: ours' invert_step uses a CLIP ViT-B/32 image-embedding loss
                   (the scenario gives no LPIPS model), the official uses LPIPS with
                   VGG16 features of the target and the render at 256 px every step
                   (about 3 x 40 GFLOP against CLIP's 2 x 8.8).
  latent_opt_step  StyleCLIP optimization/run_optimization.py, run as a script: one step
                   of its loop (edit mode, w+ from a random z at truncation 0.7, CLIPLoss
                   on the 7x-upsampled and pooled image, l2_lambda 0.008, id_lambda 0,
                   Adam lr 0.1 with its get_lr schedule), batch 1, on StyleCLIP's
                   models/stylegan2/model.py Generator. Its CLIPLoss calls the whole CLIP
                   forward, so every step also encodes the prompt, and CLIP's weights
                   require grad, so backward fills gradients for both towers; ours encodes
                   the text once and keeps CLIP's weights out of the graph. run_optimization
                   builds IDLoss even at id_lambda 0; it gets random IR-SE50 weights and is
                   not called in the step.
  global_stats     StyleCLIP global_torch: SingleChannel.py's per-channel body (reset the
                   codes to the first num_images samples, clamp the channel at its mean,
                   Manipulator.EditOneC at alpha -5/+5, GetImgF) with num_images = batch/2,
                   so one timed channel renders `batch` images like one of our relevance
                   steps. EditOneC renders one image per synthesis call and quantises it to
                   8 bits; GetImgF PIL-preprocesses each and encodes all with CLIP in one
                   no_grad batch. Ours renders the batch in one call. The official job runs
                   100 images (200 renders, one CLIP batch of 200) per channel. Also times
                   GenerateS(1000) + GetCodeMS, the counterpart of our 1000-sample
                   statistics step. Manipulator.LoadModel reads an NVIDIA pickle; the
                   harness builds global_torch/training/networks.py's Generator with random
                   weights and the kwargs legacy.convert_tf_generator gives the TF FFHQ
                   config-f pickle (channel_base 32768, channel_max 512, fp32, no clamp),
                   pickles {G, D, G_ema} as those files are laid out, and the official
                   LoadModel loads it.

It runs the official sources as they are, from checkouts the caller provides (they are
not part of ganserve); each scenario names the ones it needs:

  --nada-root        rinongal/StyleGAN-nada (nada_step, generate, clip: ZSSGAN/model/,
                     ZSSGAN/criteria/clip_loss.py, ZSSGAN/utils/text_templates.py, ZSSGAN/op/)
  --clip-root        openai/CLIP (every scenario with CLIP: clip/model.py)
  --rosinality-root  rosinality/stylegan2-pytorch (invert_step: projector.py, model.py,
                     op/, lpips/)
  --styleclip-root   orpatashnik/StyleCLIP (latent_opt_step: optimization/, criteria/,
                     models/; global_stats: global_torch/)

Run-time adaptations, none of which changes the arithmetic of a step:
  * hard-coded CUDA devices become --device: 'cuda:0' in ZSSGAN.py; `.cuda()` in
    run_optimization.py, criteria/id_loss.py and StyleCLIP's op/fused_act.py (`input =
    input.cuda()`); device="cuda" in StyleCLIP's criteria/clip_loss.py; `device = "cuda"`
    in projector.py;
  * torch.utils.cpp_extension.load (the CUDA kernels of op/) is a stub: on CPU the
    official op/ functions take their pure-PyTorch paths and never call it;
  * `clip` is a small module of this script: `load` builds the official CLIP class at
    ViT-B/32 (or B/16) size with random weights and the official preprocessing
    transforms, and `tokenize` asks `ganctl local tokenize` (our tokenizer matches
    OpenAI's on all reference prompts; the official one needs ftfy, which Debian lacks)
    once per distinct prompt list and keeps the result, so that no subprocess runs in
    a timed step (NADA's layer selection tokenizes its prompt in every step).
    The RN50 model that NADA's CLIPLoss also loads (texture loss, off by default) is
    built the same way at RN50 size: it costs memory, not step time;
  * scripts whose step loop sits in their __main__ block (projector.py,
    run_optimization.py) run as scripts with tqdm replaced by a step timer that records
    the time at each iteration and ends the script after the last one (what follows the
    loop only saves results); SingleChannel.py's loop body (six lines of its __main__
    block, which cannot be imported) is restated here around the official
    Manipulator.EditOneC and GetImgF, and the module global `device` that block sets
    for GetImgF is set by the harness;
  * modules that these paths import but never call and that Debian may lack (skimage,
    scipy, IPython in rosinality's lpips/; click, imageio, cv2 in global_torch) are
    stubs when not installed; calling a stub raises;
  * weights are random: generator checkpoints, an IR-SE50 state dict and the NVIDIA-style
    pickle are written to a temporary folder; LPIPS's VGG16 backbone is
    torchvision.models.vgg16 with weights=None (the official asks for ImageNet weights, a
    download), its linear heads load from the checkout's lpips/weights/v0.1/vgg.pth.

Requires python3-torch, python3-torchvision, python3-pil (apt), a built ganctl.
"""

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

import torch

CLIP_SIZES = {
    # name: (embed_dim, image_resolution, vision_layers, vision_width, patch, context,
    #        vocab, text_width, text_heads, text_layers), from OpenAI's released files.
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "RN50": (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12),
}


def adapted_source(path, replace=None):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    for old, new in (replace or {}).items():
        if old not in source:
            sys.exit(f"{path}: expected to find {old!r} to adapt; is this the right checkout?")
        source = source.replace(old, new)
    return source


def load_source(name, path, replace=None):
    """Executes `path` (adapted) as module `name` and registers it, so imports find it."""
    source = adapted_source(path, replace)
    module = types.ModuleType(name)
    module.__file__ = path
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def stub_cuda_extensions():
    import torch.utils.cpp_extension as cpp_extension

    class Unbuilt:
        def __getattr__(self, attr):
            raise RuntimeError("the CUDA extension is not built here; CPU paths must not reach it")

    cpp_extension.load = lambda *args, **kwargs: Unbuilt()


_STUBBED = set()  # top-level names replaced by stand-ins


def stub_missing_modules(names, decorators=False):
    """Registers import-only stand-ins for the modules in `names` that are not installed."""
    def missing(module):
        def getattr_(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)

            def call(*args, **kwargs):
                if decorators:  # click: @click.command() / @click.option(...) at import time
                    return lambda f: f
                raise RuntimeError(f"{module}.{attr} is a stub: this benchmark path must not call it")
            return call
        return getattr_

    for name in names:
        top = name.split(".")[0]
        if name in sys.modules or (top not in _STUBBED and importlib.util.find_spec(top) is not None):
            continue
        _STUBBED.add(top)
        parent = None
        parts = name.split(".")
        for i in range(len(parts)):
            full = ".".join(parts[: i + 1])
            if full not in sys.modules:
                module = types.ModuleType(full)
                module.__getattr__ = missing(full)
                sys.modules[full] = module
            if parent is not None:
                setattr(parent, parts[i], sys.modules[full])
            parent = sys.modules[full]



class StepsDone(Exception):
    """Raised by StepTimer after the last step, to end an official script there."""


class StepTimer:
    """Stands in for tqdm around an official step loop: records the time at which each
    iteration starts and, after the last one ends, raises StepsDone."""

    marks = []

    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        for item in self.iterable:
            StepTimer.marks.append(time.perf_counter())
            yield item
        StepTimer.marks.append(time.perf_counter())
        raise StepsDone()

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass


def install_step_timer():
    module = types.ModuleType("tqdm")
    module.tqdm = StepTimer
    sys.modules["tqdm"] = module


def run_script_steps(path, argv, replace=None):
    """Runs `path` as __main__ with `argv` until StepTimer ends it; the step times after
    the first (warm-up) step."""
    source = adapted_source(path, replace)
    StepTimer.marks = []
    saved = sys.argv
    sys.argv = [path] + argv
    try:
        exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path})
        sys.exit(f"{path} ended without finishing its step loop")
    except StepsDone:
        pass
    finally:
        sys.argv = saved
    m = StepTimer.marks
    return [t1 - t0 for t0, t1 in zip(m[1:-1], m[2:])]


def install_clip_module(clip_root, ganctl, vocab):
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    model_py = os.path.join(clip_root, "clip", "model.py")
    if not os.path.exists(model_py):
        model_py = os.path.join(clip_root, "model.py")
    clip_model = load_source("clip_official_model", model_py)

    def preprocessing(n_px):
        # The official transform list; NADA's CLIPLoss keeps items [:2] (resize, crop) and
        # [4:] (normalize) and drops the PIL conversions.
        return transforms.Compose([
            transforms.Resize(n_px, interpolation=InterpolationMode.BICUBIC),
            transforms.CenterCrop(n_px),
            lambda image: image.convert("RGB"),
            transforms.ToTensor(),
            transforms.Normalize((0.48145466, 0.4578275, 0.40821073),
                                 (0.26862954, 0.26130258, 0.27577711)),
        ])

    def load(name, device="cpu", jit=False, download_root=None):
        model = clip_model.CLIP(*CLIP_SIZES[name]).to(device)
        if str(device) == "cpu":
            model.float()
        return model.eval(), preprocessing(model.visual.input_resolution)

    memo = {}

    def tokenize(texts, context_length=77, truncate=False):
        if isinstance(texts, str):
            texts = [texts]
        key = (tuple(texts), truncate)
        if key not in memo:  # NADA's layer selection tokenizes its prompt in every step
            memo[key] = run_tokenizer(texts, truncate)
        return memo[key].clone()

    def run_tokenizer(texts, truncate):
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
    return module


def stats(secs):
    return {"median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs), "runs": len(secs)}


def need(a, *names):
    missing = [n for n in names if not getattr(a, n.replace("-", "_"))]
    if missing:
        sys.exit(f"--scenario {a.scenario} needs " + " and ".join("--" + n for n in missing))


def import_nada(a):
    stub_cuda_extensions()
    sys.path.insert(0, a.nada_root)
    sys.path.insert(0, os.path.join(a.nada_root, "ZSSGAN"))  # sg2_model imports `op`
    sys.modules.setdefault("ZSSGAN.legacy", types.ModuleType("ZSSGAN.legacy"))  # StyleGAN3 pickles only
    import ZSSGAN  # noqa: F401  (the package, so the adapted module can sit inside it)
    from ZSSGAN.model import sg2_model
    return sg2_model


def bench_nada_step(a):
    need(a, "nada-root", "clip-root")
    sg2_model = import_nada(a)
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
    return {**stats(secs), "auto_layer_k": a.auto_layer_k, "loss": float(loss),
            "clip_params_given_gradients": f"{sum(q.grad is not None for q in clip_params)}/{len(clip_params)}"}


def bench_generate(a):
    need(a, "nada-root")
    sg2_model = import_nada(a)
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
    out = stats(secs)
    out["images_per_s"] = a.batch / out["median_s"]
    return out


def bench_clip(a):
    need(a, "nada-root", "clip-root")
    clip = install_clip_module(a.clip_root, a.ganctl, a.vocab)
    model, _ = clip.load("ViT-B/32", device=a.device)
    templates = load_source("nada_text_templates",
                            os.path.join(a.nada_root, "ZSSGAN", "utils", "text_templates.py")).imagenet_templates
    tokens = clip.tokenize([t.format("photo") for t in templates]).to(a.device)
    images = torch.randn(a.batch, 3, 224, 224, device=a.device)
    img_s, txt_s = [], []
    with torch.no_grad():
        for i in range(a.iters + 1):  # the first is warm-up
            t0 = time.perf_counter()
            model.encode_image(images).sum().item()
            t1 = time.perf_counter()
            model.encode_text(tokens).sum().item()
            t2 = time.perf_counter()
            if i > 0:
                img_s.append(t1 - t0)
                txt_s.append(t2 - t1)

    def input_grad_times():
        secs = []
        for i in range(a.iters + 1):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            x = images.detach().requires_grad_(True)
            model.encode_image(x).sum().backward()
            x.grad.sum().item()
            if i > 0:
                secs.append(time.perf_counter() - t0)
        return secs

    with_weights = input_grad_times()  # as clip.load returns the model
    model.requires_grad_(False)
    input_only = input_grad_times()  # the work ours does
    return {"encode_image": stats(img_s), "encode_text_79": stats(txt_s),
            "encode_image_with_input_grad": stats(input_only),
            "encode_image_with_input_and_weight_grads": stats(with_weights),
            "prompts": len(templates), "clip_precision": "fp32"}


def bench_invert_step(a):
    need(a, "rosinality-root")
    from PIL import Image
    import torchvision.models

    stub_cuda_extensions()
    stub_missing_modules(["skimage.measure", "skimage.transform", "skimage.color", "scipy.ndimage", "IPython"])
    install_step_timer()
    vgg16 = torchvision.models.vgg16

    def random_vgg16(*args, pretrained=False, **kwargs):
        return vgg16(*args, weights=None, **kwargs)

    torchvision.models.vgg16 = random_vgg16
    sys.path.insert(0, a.rosinality_root)
    from model import Generator  # rosinality's model.py, the one projector.py imports

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "random.pt")
        torch.save({"g_ema": Generator(a.resolution, 512, 8).state_dict()}, ckpt)
        target = os.path.join(tmp, "target.png")
        Image.new("RGB", (a.resolution, a.resolution), (128, 128, 128)).save(target)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            secs = run_script_steps(
                os.path.join(a.rosinality_root, "projector.py"),
                ["--ckpt", ckpt, "--size", str(a.resolution), "--step", str(a.iters + 1), "--w_plus",
                 "--mse", "1", target],
                replace={'device = "cuda"': f"device = {a.device!r}"})
        finally:
            os.chdir(cwd)
    out = stats(secs)
    out["steps_per_s"] = 1 / out["median_s"]
    out["batch"] = 1  # one target image
    out["loss"] = "lpips(vgg16, random backbone)+mse+noise_regularize"
    return out


def bench_latent_opt_step(a):
    need(a, "styleclip-root", "clip-root")
    install_clip_module(a.clip_root, a.ganctl, a.vocab)
    install_step_timer()
    root = a.styleclip_root
    sys.path.insert(0, root)
    dev = repr(a.device)
    load_source("models.stylegan2.op.fused_act", os.path.join(root, "models", "stylegan2", "op", "fused_act.py"),
                replace={"input = input.cuda()": f"input = input.to({dev})"})
    load_source("criteria.clip_loss", os.path.join(root, "criteria", "clip_loss.py"),
                replace={'device="cuda"': f"device={dev}"})
    load_source("criteria.id_loss", os.path.join(root, "criteria", "id_loss.py"),
                replace={"self.facenet.cuda()": f"self.facenet.to({dev})"})
    from models.stylegan2.model import Generator
    from models.facial_recognition.model_irse import Backbone

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "random.pt")
        torch.save({"g_ema": Generator(a.resolution, 512, 8).state_dict()}, ckpt)
        irse = os.path.join(tmp, "model_ir_se50.pth")
        torch.save(Backbone(input_size=112, num_layers=50, drop_ratio=0.6, mode="ir_se").state_dict(), irse)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            secs = run_script_steps(
                os.path.join(root, "optimization", "run_optimization.py"),
                ["--ckpt", ckpt, "--stylegan_size", str(a.resolution), "--step", str(a.iters + 1),
                 "--save_intermediate_image_every", "0", "--results_dir", os.path.join(tmp, "results"),
                 "--ir_se50_weights", irse],
                replace={".cuda()": f".to({dev})"})
        finally:
            os.chdir(cwd)
    out = stats(secs)
    out["steps_per_s"] = 1 / out["median_s"]
    out["batch"] = 1  # run_optimization edits one latent
    return out


def bench_global_stats(a):
    need(a, "styleclip-root", "clip-root")
    import numpy as np

    clip = install_clip_module(a.clip_root, a.ganctl, a.vocab)
    stub_missing_modules(["click"], decorators=True)
    stub_missing_modules(["imageio", "cv2"])
    sys.path.insert(0, os.path.join(a.styleclip_root, "global_torch"))
    from training import networks
    import SingleChannel
    from manipulate import Manipulator

    device = torch.device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        pkl = os.path.join(tmp, "random-config-f.pkl")
        g = networks.Generator(
            z_dim=512, c_dim=0, w_dim=512, img_resolution=a.resolution, img_channels=3,
            mapping_kwargs=dict(num_layers=8, embed_features=None, layer_features=None, activation="lrelu",
                                lr_multiplier=0.01, w_avg_beta=0.995),
            synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
                                  architecture="skip", resample_filter=[1, 3, 3, 1], use_noise=True,
                                  activation="lrelu")).eval().requires_grad_(False)
        d = networks.Discriminator(c_dim=0, img_resolution=a.resolution, img_channels=3).eval().requires_grad_(False)
        with open(pkl, "wb") as f:
            pickle.dump(dict(G=g, D=d, G_ema=g), f)
        del g, d
        # SingleChannel.py's __main__, with num_img 1000 and num_images = batch / 2.
        model, preprocess = clip.load("ViT-B/32", device=device, jit=False)
        SingleChannel.device = device
        M = Manipulator()
        M.device = device
        G = M.LoadModel(pkl, device)
    M.G = G
    M.SetGParameters()
    t0 = time.perf_counter()
    M.GenerateS(num_img=1000)
    M.GetCodeMS()
    sample_s = time.perf_counter() - t0
    num_images = (a.batch + 1) // 2  # ours rounds an odd batch up to the next pair too
    dlatents_o = [d[0:num_images] for d in M.dlatents]
    M.alpha = [-5, 5]
    M.step = 2
    M.num_images = num_images
    select = np.array(M.mindexs) <= 16  # below or equal to 128 resolution
    mindexs2 = np.array(M.mindexs)[select]
    order = [(lindex, cindex) for lindex in mindexs2 for cindex in range(M.dlatents[lindex].shape[1])]
    secs = []
    all_f = []
    for i, (lindex, cindex) in enumerate(order[: a.iters + 1]):  # the first channel is warm-up
        t0 = time.perf_counter()
        M.dlatents = copy.copy(dlatents_o)
        M.dlatents[lindex][:, cindex] = M.code_mean[lindex][cindex]
        M.manipulate_layers = [lindex]
        codes, out = M.EditOneC(cindex)
        image_features1 = SingleChannel.GetImgF(out, model, preprocess)
        all_f.append(image_features1)
        if i > 0:
            secs.append(time.perf_counter() - t0)
    return {**stats(secs), "sample_step_1000_s": sample_s, "images_per_step": 2 * num_images,
            "renders_per_synthesis_call": 1, "relevance_channels": len(order)}


BENCHES = {"nada_step": bench_nada_step, "generate": bench_generate, "clip": bench_clip,
           "invert_step": bench_invert_step, "latent_opt_step": bench_latent_opt_step,
           "global_stats": bench_global_stats}


def blas_in_use():
    with open("/proc/self/maps", encoding="utf-8") as f:
        paths = {line.split()[-1] for line in f if any(k in line for k in ("blas", "lapack", "blis"))}
    return ", ".join(sorted(paths)) or "unknown"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=list(BENCHES), default="nada_step")
    p.add_argument("--nada-root", help="rinongal/StyleGAN-nada checkout (nada_step, generate, clip)")
    p.add_argument("--clip-root", help="openai/CLIP checkout (nada_step, clip, latent_opt_step, global_stats)")
    p.add_argument("--rosinality-root", help="rosinality/stylegan2-pytorch checkout (invert_step)")
    p.add_argument("--styleclip-root", help="orpatashnik/StyleCLIP checkout (latent_opt_step, global_stats)")
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
    with contextlib.redirect_stdout(sys.stderr):  # the official code prints progress
        result = BENCHES[a.scenario](a)
    print(json.dumps({
        "scenario": a.scenario + "_official", "resolution": a.resolution, "batch": a.batch, **result,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blas": blas_in_use(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
