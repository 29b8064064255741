#!/usr/bin/env python3
"""libtransface's training step and a PyTorch re-implementation side by side, in one process.

Both engines run the official TransFace training iteration (train.py of the official code, one
process, fp32, CPU) on the same uint8 [B, 112, 112, 3] batch (seeded random pixels, labels
i % classes), ALTERNATELY: for each DPAP setting, --warmup untimed steps per engine, then
--steps rounds in which each engine takes one timed step (the order alternates from round to
round, and an untimed --settle-ms pause precedes every timed step so the other engine's idle
worker threads are quiet). The result per engine is the median seconds/step -> images/s, and
the ratio ours/PyTorch (> 1: libtransface is faster).

    PYTHONPATH=bindings/python TRANSFACE_LIBRARY=.build/release/libtransface.so \\
        python3 bindings/python/benchmarks/train_side_by_side.py --arch vit_t --batch 32 \\
        --classes 1000 --threads 2 --steps 10 --warmup 2 --dpap both --json train_bench.json

One step, with DPAP (the default recipe):
  pass 1  backbone forward in train mode under no_grad (BatchNorm running statistics move), the
          EHSM-weighted ArcFace loss of it (reported as first_pass_loss);
  DPAP    top-7 patches per image by the SE softmax weight; each image with probability 0.2;
          per patch a random partner cell of the batch, lambda ~ U(0, 1), amplitude-spectrum mix
          (per-channel 9x9 FFT, partner amplitude mixed in, own phase kept, inverse FFT, uint8);
  pass 2  backbone forward with gradient on the mixed images, Partial FC (sample_rate 1: every
          centre) -> normalised cosine logits -> ArcFace margin (s 64, m 0.5, straight-through)
          -> EHSM-weighted cross entropy (w = 1 + exp(-mean patch std), a constant: official);
  then    backward, clip_grad_norm_(backbone, 5), AdamW (lr 1e-3, wd 0.1 on every tensor, one
          optimizer over backbone + centres), PolyScheduler step.
Without DPAP: pass 2 (on the original images) and the rest only.

Engines: ours = transface.Trainer({"arch", "num_classes", "batch_size", "threads", "seed",
"schedule"}) with libtransface's defaults for everything else (the official recipe above;
"dpap": {"enabled": false} for the DPAP-off setting). PyTorch = the nn.Module re-implementation in
this file, written as the official code is (backbones/vit.py, partial_fc.py, losses.py, FFT.py and
train.py's loop; autograd, torch.optim.AdamW with its default CPU implementation,
torch.nn.utils.clip_grad_norm_; attention by plain matmul + softmax as the official Attention,
or F.scaled_dot_product_attention with --torch-attention sdpa), torch.set_num_threads(--threads),
no torch.compile. The PyTorch step also starts from uint8 pixels (ToTensor + Normalize(0.5, 0.5)
inside the timed step, as libtransface's step includes its preprocessing).

PyTorch's weights: the official initialisation drawn by torch (seeded), so its first-step loss
is only comparable in range with libtransface's (different weights, masks, drop-path and DPAP
draws); --same-init copies libtransface's initial weights and class centres into the PyTorch
model, leaving only the random draws different.

Per-phase seconds: PyTorch's are measured here (first pass, dpap, forward = backbone + loss,
backward, optimizer = clip + AdamW + scheduler); libtransface's binding returns only the step's
total wall time (r["seconds"], reported as "ours lib s"), not its internal phases.

OpenBLAS (our GEMMs) picks its kernel from the CPU unless OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
say otherwise; the script prints what is set and the kernel in effect. To measure the
auto-detected kernel: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 ... (tests never do).
"""

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # bindings/python: run without installing

import transface                                    # noqa: E402
from _machine import cpu_model, loadavg, openblas_info  # noqa: E402


def torch_info(torch):
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "mkl": bool(torch.backends.mkl.is_available()), "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)()}


# ------------------------------------------------------------------ the PyTorch re-implementation


def build_torch_model(torch, cfg, attention):
    """The official TransFace ViT (backbones/vit.py) as nn.Modules, state_dict names included."""
    nn, F = torch.nn, torch.nn.functional

    class DropPath(nn.Module):
        """Stochastic depth per sample (official DropPath)."""
        def __init__(self, drop_prob):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            if self.drop_prob == 0. or not self.training:
                return x
            keep_prob = 1 - self.drop_prob
            shape = (x.shape[0],) + (1,) * (x.ndim - 1)
            random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
            random_tensor.floor_()
            return x.div(keep_prob) * random_tensor

    class Mlp(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.ReLU6()
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Attention(nn.Module):
        def __init__(self, dim, num_heads):
            super().__init__()
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=False)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, d = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            if attention == "sdpa":
                x = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
            else:                                   # official: explicit matmul + softmax
                attn = (q @ k.transpose(-2, -1)) * self.scale
                attn = attn.softmax(dim=-1)
                x = attn @ v
            return self.proj(x.transpose(1, 2).reshape(b, n, d))

    class Block(nn.Module):
        def __init__(self, dim, num_heads, hidden, drop_path):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-5)
            self.attn = Attention(dim, num_heads)
            self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
            self.norm2 = nn.LayerNorm(dim, eps=1e-5)
            self.mlp = Mlp(dim, hidden)

        def forward(self, x):
            x = x + self.drop_path(self.attn(self.norm1(x)))
            x = x + self.drop_path(self.mlp(self.norm2(x)))
            return x

    class PatchEmbed(nn.Module):
        def __init__(self, patch, dim):
            super().__init__()
            self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)

    class VisionTransformer(nn.Module):
        def __init__(self, c):
            super().__init__()
            d, p = c.embed_dim, c.num_patches
            self.num_patches, self.embed_dim, self.mask_ratio = p, d, float(c.mask_ratio)
            self.patch_embed = PatchEmbed(c.patch_size, d)
            self.pos_embed = nn.Parameter(torch.zeros(1, p, d))
            self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
            dpr = [x.item() for x in torch.linspace(0, float(c.drop_path_rate), c.depth)]
            self.blocks = nn.ModuleList([Block(d, c.num_heads, c.mlp_hidden_dim, dpr[i]) for i in range(c.depth)])
            self.norm = nn.LayerNorm(d, eps=1e-5)
            self.feature = nn.Sequential(
                nn.Linear(d * p, d, bias=False), nn.BatchNorm1d(d, eps=2e-5),
                nn.Linear(d, c.embedding_size, bias=False), nn.BatchNorm1d(c.embedding_size, eps=2e-5))
            nn.init.trunc_normal_(self.pos_embed, std=.02)
            nn.init.normal_(self.mask_token, std=.02)
            self.apply(self._init_weights)
            # created after apply(): PyTorch's default init, as the official SE module
            self.senet = nn.Sequential(nn.Linear(d * p, p, bias=False), nn.ReLU(inplace=True),
                                       nn.Linear(p, p, bias=False), nn.Sigmoid())

        @staticmethod
        def _init_weights(m):
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0)
                nn.init.constant_(m.weight, 1.0)

        def random_masking(self, x):
            n, length, d = x.size()
            len_keep = int(length * (1 - self.mask_ratio))
            noise = torch.rand(n, length, device=x.device)
            ids_shuffle = torch.argsort(noise, dim=1)
            ids_restore = torch.argsort(ids_shuffle, dim=1)
            ids_keep = ids_shuffle[:, :len_keep]
            x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
            return x_masked, ids_restore

        def forward_features(self, x):
            b = x.shape[0]
            x = self.patch_embed(x)
            x = x + self.pos_embed
            masking = self.training and self.mask_ratio > 0
            if masking:
                x, ids_restore = self.random_masking(x)
            for blk in self.blocks:
                x = blk(x)
            x = self.norm(x.float())
            if masking:
                mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] - x.shape[1], 1)
                x_ = torch.cat([x, mask_tokens], dim=1)
                x = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
            original = x
            out = self.senet(torch.reshape(x, (b, self.num_patches * self.embed_dim)))
            out_softmax = out.softmax(dim=1)
            out = torch.reshape(out, (b, self.num_patches, 1)) * original
            patch_entropy = torch.std(out, dim=2)            # unbiased std of each gated token
            return torch.reshape(out, (b, self.num_patches * self.embed_dim)), out_softmax, patch_entropy

        def forward(self, x):
            x, weight, patch_entropy = self.forward_features(x)
            return self.feature(x), weight, patch_entropy

    return VisionTransformer(cfg)


def build_torch_head(torch, num_classes, embedding_size, s=64.0, m2=0.5):
    """Partial FC (sample_rate 1), ArcFace CombinedMarginLoss and the EHSM-weighted
    DistCrossEntropy of the official code, for one process."""
    nn, F = torch.nn, torch.nn.functional

    class DistCrossEntropyFunc(torch.autograd.Function):
        """Official DistCrossEntropyFunc (world size 1) with TransFace's EHSM sample weight,
        a constant of the backward."""
        @staticmethod
        def forward(ctx, logits, label, weight):
            batch_size = logits.size(0)
            max_logits, _ = torch.max(logits, dim=1, keepdim=True)
            logits.sub_(max_logits)
            logits.exp_()
            sum_logits_exp = torch.sum(logits, dim=1, keepdim=True)
            logits.div_(sum_logits_exp)
            index = torch.where(label != -1)[0]
            loss = torch.zeros(batch_size, 1, device=logits.device)
            loss[index] = logits[index].gather(1, label[index])
            ctx.save_for_backward(index, logits, label, weight)
            return (loss.clamp_min_(1e-30).log_() * weight.view(-1, 1)).mean() * (-1)

        @staticmethod
        def backward(ctx, loss_gradient):
            index, logits, label, weight = ctx.saved_tensors
            batch_size = logits.size(0)
            one_hot = torch.zeros(size=[index.size(0), logits.size(1)], device=logits.device)
            one_hot.scatter_(1, label[index], 1)
            logits[index] -= one_hot
            logits.div_(batch_size)
            logits.mul_(weight.view(-1, 1))
            return logits * loss_gradient.item(), None, None

    class PartialFC(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.normal(0, 0.01, (num_classes, embedding_size)))

        def margin_softmax(self, logits, labels):            # CombinedMarginLoss, m1 = 1, m3 = 0
            index_positive = torch.where(labels != -1)[0]
            target_logit = logits[index_positive, labels[index_positive].view(-1)]
            with torch.no_grad():
                target_logit.arccos_()
                logits.arccos_()
                final_target_logit = target_logit + m2
                logits[index_positive, labels[index_positive].view(-1)] = final_target_logit
                logits.cos_()
            return logits * s

        def forward(self, embeddings, labels, patch_entropy):
            labels = labels.long().view(-1, 1)
            logits = F.linear(F.normalize(embeddings), F.normalize(self.weight))
            logits = logits.clamp(-1, 1)
            logits = self.margin_softmax(logits, labels)
            weight = (1 + torch.exp(-patch_entropy.mean(dim=1))).detach()   # EHSM (official: constant)
            return DistCrossEntropyFunc.apply(logits, labels, weight)

    return PartialFC()


def amplitude_spectrum_mix(img1, img2, alpha, rng, ratio=1.0):
    """Official FFT.amplitude_spectrum_mix (lambda drawn inside, np.random.uniform(0, alpha))."""
    lam = rng.uniform(0, alpha)
    h, w, c = img1.shape
    h_crop = int(h * math.sqrt(ratio))
    w_crop = int(w * math.sqrt(ratio))
    h_start = h // 2 - h_crop // 2
    w_start = w // 2 - w_crop // 2
    img1_fft = np.fft.fft2(img1, axes=(0, 1))
    img2_fft = np.fft.fft2(img2, axes=(0, 1))
    img1_abs, img1_pha = np.abs(img1_fft), np.angle(img1_fft)
    img2_abs = np.abs(img2_fft)
    img1_abs = np.fft.fftshift(img1_abs, axes=(0, 1))
    img2_abs = np.fft.fftshift(img2_abs, axes=(0, 1))
    img1_abs_ = np.copy(img1_abs)
    img2_abs_ = np.copy(img2_abs)
    img1_abs[h_start:h_start + h_crop, w_start:w_start + w_crop] = \
        lam * img2_abs_[h_start:h_start + h_crop, w_start:w_start + w_crop] + \
        (1 - lam) * img1_abs_[h_start:h_start + h_crop, w_start:w_start + w_crop]
    img1_abs = np.fft.ifftshift(img1_abs, axes=(0, 1))
    img21 = img1_abs * (np.e ** (1j * img1_pha))
    img21 = np.real(np.fft.ifft2(img21, axes=(0, 1)))
    return np.uint8(np.clip(img21, 0, 255))


class TorchEngine:
    """train.py's loop body on one process, CPU, fp32."""
    name = "torch"

    def __init__(self, torch, cfg, args, dpap, total_steps):
        self.torch = torch
        torch.manual_seed(args.seed)
        self.cfg, self.dpap = cfg, dpap
        self.backbone = build_torch_model(torch, cfg, args.torch_attention).train()
        self.pfc = build_torch_head(torch, args.classes, cfg.embedding_size).train()
        self.opt = torch.optim.AdamW(params=[{"params": self.backbone.parameters()},
                                             {"params": self.pfc.parameters()}],
                                     lr=1e-3, weight_decay=0.1)
        # PolyScheduler (power 2, no warm-up): lr(e) = base * (1 - e / max_steps)^2; its constructor
        # sets lr(0) and last_epoch -1, so optimizer step i (0-based) uses lr(max(i - 1, 0))
        self.base_lr, self.max_steps, self.last_epoch = 1e-3, total_steps, -1
        self.py_random = random.Random(args.seed)             # random.random() draws
        self.np_random = np.random.RandomState(args.seed)     # np.random.randint / uniform draws
        self.top_k, self.probability, self.alpha = 7, 0.2, 1.0
        self.grid, self.patch = cfg.grid, cfg.patch_size
        self.phases = {}

    def load_from(self, trainer):
        """Copies libtransface's initial weights (and centres) into the PyTorch modules."""
        torch = self.torch
        with torch.no_grad():
            for name, t in self.backbone.state_dict().items():
                if name.endswith("num_batches_tracked"):
                    continue
                t.copy_(torch.from_numpy(trainer.tensor(name)).view_as(t))
            self.pfc.weight.copy_(torch.from_numpy(trainer.tensor("partial_fc.weight")).view_as(self.pfc.weight))

    def _lr_step(self):
        self.last_epoch += 1
        lr = self.base_lr * (1 - self.last_epoch / self.max_steps) ** 2
        for g in self.opt.param_groups:
            g["lr"] = lr

    def _dpap(self, img, weight):
        """train.py's DPAP block: returns the normalised mixed batch and the images augmented."""
        torch = self.torch
        b, p, g = img.shape[0], self.patch, self.grid
        img_original = ((img * 0.5) + 0.5) * 255
        img_original = img_original.permute(0, 2, 3, 1).numpy().copy()      # B x H x W x C float32
        weight_sort = torch.argsort(weight, dim=1, descending=True)[:, :self.top_k]
        augmented = 0
        for i in range(b):
            if self.py_random.random() <= self.probability:
                augmented += 1
                for j in range(self.top_k):
                    patch_index = int(weight_sort[i][j])
                    h, w = patch_index // g, patch_index % g
                    img_src = img_original[i, h * p:(h + 1) * p, w * p:(w + 1) * p, :]
                    random_index = self.np_random.randint(0, b)
                    random_h = self.np_random.randint(0, g)
                    random_w = self.np_random.randint(0, g)
                    img_random = img_original[random_index, random_h * p:(random_h + 1) * p,
                                              random_w * p:(random_w + 1) * p, :]
                    img_original[i, h * p:(h + 1) * p, w * p:(w + 1) * p, :] = \
                        amplitude_spectrum_mix(img_src, img_random, self.alpha, self.np_random)
        img_fft = torch.from_numpy(img_original).permute(0, 3, 1, 2).contiguous()
        return ((img_fft / 255) - 0.5) / 0.5, augmented

    def step(self, images_u8, labels):
        torch = self.torch
        phases = {}
        clock = [time.perf_counter()]

        def lap(name):
            t = time.perf_counter()
            phases[name] = t - clock[0]
            clock[0] = t

        # ToTensor + Normalize((0.5,)*3, (0.5,)*3)
        img = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float().div_(255).sub_(0.5).div_(0.5)
        local_labels = torch.from_numpy(labels)
        first_loss, augmented = float("nan"), 0
        if self.dpap:
            with torch.no_grad():
                emb, weight, entropy = self.backbone(img)
                first_loss = self.pfc(emb, local_labels, entropy).item()
            lap("first pass")
            img, augmented = self._dpap(img, weight)
            lap("dpap")
        emb, _, entropy = self.backbone(img)
        loss = self.pfc(emb, local_labels, entropy)
        lap("forward")
        loss.backward()
        lap("backward")
        norm = torch.nn.utils.clip_grad_norm_(self.backbone.parameters(), 5)
        self.opt.step()
        self.opt.zero_grad()
        self._lr_step()
        lap("optimizer")
        self.phases = phases
        return {"loss": loss.item(), "first_pass_loss": first_loss, "gradient_norm": float(norm),
                "images_augmented": augmented, "phases": phases}

    def close(self):
        self.backbone = self.pfc = self.opt = None


class OursEngine:
    name = "ours"

    def __init__(self, args, dpap, total_steps):
        config = {"arch": args.arch, "num_classes": args.classes, "batch_size": args.batch,
                  "threads": args.threads, "seed": args.seed,
                  "schedule": {"warmup_steps": 0, "max_steps": total_steps}}
        if not dpap:
            config["dpap"] = {"enabled": False}
        self.config = config
        self.trainer = transface.Trainer(config)
        self.last = None

    def step(self, images_u8, labels):
        self.last = self.trainer.step(images_u8, labels)
        return self.last

    def close(self):
        self.trainer.close()


# ------------------------------------------------------------------ measuring


def measure(engines, x, labels, warmup, steps, settle):
    """First (untimed) step results, then per engine the seconds of each timed step and the
    step results, from alternating rounds with an untimed `settle` pause before every step."""
    first = {}
    for e in engines:                                      # first step of each: the sanity check
        t = time.perf_counter()
        r = e.step(x, labels)
        first[e.name] = dict(r, wall_s=time.perf_counter() - t)
    for _ in range(warmup - 1):
        for e in engines:
            e.step(x, labels)
    times = {e.name: [] for e in engines}
    results = {e.name: [] for e in engines}
    for r in range(steps):
        order = engines if r % 2 == 0 else engines[::-1]
        for e in order:
            time.sleep(settle)
            t = time.perf_counter()
            out = e.step(x, labels)
            times[e.name].append(time.perf_counter() - t)
            results[e.name].append(out)
    return first, times, results


def fmt_loss(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vit_t", help="preset (default vit_t)")
    p.add_argument("--batch", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--classes", type=int, default=1000, help="class centres (default 1000)")
    p.add_argument("--threads", type=int, default=2, help="threads of both engines (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (rounds) per engine and DPAP setting (default 10)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed steps per engine first, >= 1; the first is the loss sanity check (default 2)")
    p.add_argument("--dpap", choices=["on", "off", "both"], default="both", help="DPAP setting(s) to time (default both)")
    p.add_argument("--settle-ms", type=float, default=50.0,
                   help="untimed pause before every timed step (default 50)")
    p.add_argument("--seed", type=int, default=0, help="images, PyTorch init and draws; libtransface's seed (default 0)")
    p.add_argument("--torch-attention", choices=["matmul", "sdpa"], default="matmul",
                   help="PyTorch attention: the official explicit matmul + softmax (default) or F.scaled_dot_product_attention")
    p.add_argument("--same-init", action="store_true",
                   help="copy libtransface's initial weights and centres into the PyTorch model")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = p.parse_args(argv)
    if min(args.batch - 1, args.classes, args.threads, args.steps, args.warmup) < 1:
        p.error("--batch must be >= 2 and --classes, --threads, --steps, --warmup >= 1")
    try:
        import torch
    except ImportError:
        p.error("torch is not importable")
    try:
        lib_path = transface.library_path()
    except transface.LibraryNotFoundError as e:
        print(f"libtransface not found: {e}\n(build it with swift build -c release, or set TRANSFACE_LIBRARY)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cfg = transface.config_preset(args.arch)
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.dpap]
    total_steps = max(1000, args.warmup + args.steps + 1)   # the schedule never reaches its end

    blas = openblas_info()
    system = {"cpu": cpu_model(), "cpus": os.cpu_count(), "loadavg_start": loadavg(),
              "python": platform.python_version(), "numpy": np.__version__,
              "libtransface": transface.version(), "library_path": lib_path,
              "torch": torch_info(torch), "openblas": blas,
              "arch": args.arch, "model": cfg.to_dict(), "batch": args.batch, "classes": args.classes,
              "threads": args.threads, "steps": args.steps, "warmup": args.warmup, "settle_ms": args.settle_ms,
              "seed": args.seed, "torch_attention": args.torch_attention, "same_init": args.same_init}

    def fmt(v):
        return "(unset)" if v is None else v
    ti = system["torch"]
    print(f"cpu: {system['cpu']}, {system['cpus']} cpus, load average {system['loadavg_start']}")
    print(f"libtransface {system['libtransface']} ({lib_path}); torch {ti['version']} (threads {ti['threads']}, "
          f"mkl {ti['mkl']}, mkldnn {ti['mkldnn']}, cpu capability {ti['cpu_capability']}); numpy {np.__version__}")
    print(f"OpenBLAS: OPENBLAS_CORETYPE={fmt(blas['OPENBLAS_CORETYPE'])} OPENBLAS_L2_SIZE="
          f"{fmt(blas['OPENBLAS_L2_SIZE'])}; kernel in effect: {blas.get('corename', '?')} "
          f"({blas.get('config', '?')}; {blas.get('library') or 'library not found'})")
    print(f"model: {args.arch} (D {cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, drop path "
          f"{cfg.drop_path_rate}, mask {cfg.mask_ratio}); batch {args.batch}, {args.classes} classes; "
          f"torch attention: {args.torch_attention}; torch weights: "
          f"{'copied from libtransface' if args.same_init else 'own official init'}")
    print(f"timing: {args.warmup} warm-up steps each, then {args.steps} alternating rounds "
          f"(a {args.settle_ms:g} ms untimed pause before every step); median s/step", flush=True)

    rng = np.random.default_rng(args.seed)
    x = rng.integers(0, 256, (args.batch, cfg.img_size, cfg.img_size, 3), dtype=np.uint8)
    labels = (np.arange(args.batch) % args.classes).astype(np.int32)

    results = []
    for dpap in settings:
        tag = "on" if dpap else "off"
        ours = OursEngine(args, dpap, total_steps)
        tor = TorchEngine(torch, cfg, args, dpap, total_steps)
        if args.same_init:
            tor.load_from(ours.trainer)
        engines = [ours, tor]
        try:
            first, times, outs = measure(engines, x, labels, args.warmup, args.steps, args.settle_ms / 1000)
        finally:
            for e in engines:
                e.close()
        row = {"dpap": tag, "ours_config": ours.config, "first_step": first, "engines": {}}
        for name, ts in times.items():
            med = statistics.median(ts)
            entry = {"median_s": med, "images_per_s": args.batch / med, "min_s": min(ts), "max_s": max(ts),
                     "step_s": ts, "losses": [o["loss"] for o in outs[name]]}
            if name == "ours":
                entry["library_seconds_median"] = statistics.median(o["seconds"] for o in outs[name])
                entry["images_augmented"] = [o["images_augmented"] for o in outs[name]]
            else:
                keys = outs[name][0]["phases"].keys()
                entry["phases_median_s"] = {k: statistics.median(o["phases"][k] for o in outs[name]) for k in keys}
                entry["images_augmented"] = [o["images_augmented"] for o in outs[name]]
            row["engines"][name] = entry
        row["ratio_ours_over_torch"] = row["engines"]["ours"]["images_per_s"] / row["engines"]["torch"]["images_per_s"]
        results.append(row)
        fo, ft = first["ours"], first["torch"]
        print(f"DPAP {tag}: first step loss (pass 1 / trained pass): ours {fmt_loss(fo['first_pass_loss'])} / "
              f"{fmt_loss(fo['loss'])}, torch {fmt_loss(ft['first_pass_loss'])} / {fmt_loss(ft['loss'])}; "
              f"gradient norm ours {fo['gradient_norm']:.1f}, torch {ft['gradient_norm']:.1f}; "
              f"images augmented ours {fo['images_augmented']}, torch {ft['images_augmented']}", flush=True)
        e = row["engines"]
        ph = ", ".join(f"{k} {v:.3f}" for k, v in e["torch"]["phases_median_s"].items())
        print(f"DPAP {tag}: ours {e['ours']['images_per_s']:.2f} img/s ({e['ours']['median_s']:.3f} s/step, "
              f"library's own {e['ours']['library_seconds_median']:.3f} s), torch {e['torch']['images_per_s']:.2f} "
              f"img/s ({e['torch']['median_s']:.3f} s/step: {ph}); ratio {row['ratio_ours_over_torch']:.2f}",
              flush=True)
    system["loadavg_end"] = loadavg()

    cols = ["DPAP", "ours img/s", "ours s/step", "ours lib s", "torch img/s", "torch s/step",
            "torch first pass", "torch dpap", "torch fwd+loss", "torch bwd", "torch opt", "ratio ours/torch"]
    rows = []
    for r in results:
        o, t = r["engines"]["ours"], r["engines"]["torch"]
        ph = t["phases_median_s"]
        rows.append([r["dpap"], f"{o['images_per_s']:.2f}", f"{o['median_s']:.3f}", f"{o['library_seconds_median']:.3f}",
                     f"{t['images_per_s']:.2f}", f"{t['median_s']:.3f}",
                     *(f"{ph[k]:.3f}" if k in ph else "-" for k in ("first pass", "dpap", "forward", "backward", "optimizer")),
                     f"{r['ratio_ours_over_torch']:.2f}"])
    widths = [max(len(c), *(len(x[i]) for x in rows)) for i, c in enumerate(cols)]
    print(f"\n{args.arch}, batch {args.batch}, {args.classes} classes, {args.threads} threads, "
          f"median of {args.steps} rounds:\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) + " |")
    print(f"\nload average at the end: {system['loadavg_end']}; ours lib s = the step's wall time as libtransface "
          f"measures it (r['seconds']); torch phases are medians in seconds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"system": system, "results": results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
