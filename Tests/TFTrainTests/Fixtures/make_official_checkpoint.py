#!/usr/bin/env python3
"""Writes official-run checkpoints as the official TransFace train.py saves them, for
OfficialRunImportTests (needs torch; not a CI dependency — the outputs are committed).

    python3 Tests/TFTrainTests/Fixtures/make_official_checkpoint.py   # writes Fixtures/official_run/

A micro TransFace ViT (img 18, patch 9 → 4 patches, embed 8, depth 1, 2 heads, MLP 16,
embedding 4, 5 classes) small enough to commit. Its parameters live in standard torch modules
named and ordered as the official VisionTransformer registers them (own parameters pos_embed,
mask_token; then patch_embed, blocks, norm, feature, senet), so `state_dict()` and
`parameters()` have the official order. The run is train.py's loop without the network: each
iteration sets seeded gradients (none for mask_token, as without masking), clips the backbone to
5, steps `torch.optim.AdamW(params=[{"params": backbone}, {"params": centres}])` (or SGD with
momentum 0.9), zeroes the gradients and steps a PolyScheduler (the official formula and
attributes). After 2 iterations it saves, exactly as train.py (`save_all_states`):

    {"epoch", "global_step", "state_dict_backbone", "state_dict_softmax_fc": {"weight"},
     "state_optimizer": opt.state_dict(), "state_lr_scheduler": lr_scheduler.state_dict()}

for world size 1 (`w1/checkpoint_gpu_0.pt`, AdamW; `sgd/checkpoint_gpu_0.pt`, SGD) and world
size 2 (`w2/checkpoint_gpu_{0,1}.pt`: rank r owns classes [start_r, start_r + num_local_r),
num_local_r = C//W + (r < C%W), with its own optimizer over (backbone, its shard)), plus
`model.pt` (backbone state_dict). `expected.npz` holds, under libtransface's names, the state
at the checkpoint (weights, BatchNorm statistics, `partial_fc.weight`,
`optimizer.<moment>.<name>`), one more iteration's gradients (`next_grad.<name>`) and torch's
parameters after that optimizer step without clipping (`next.<name>`), for AdamW and SGD
(`sgd.` prefix).
"""
import copy
import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

IMG, PATCH, D, DEPTH, HIDDEN, EMB, CLASSES = 18, 9, 8, 1, 16, 4, 5
N = (IMG // PATCH) ** 2
LR, WD, MAX_STEPS, WARMUP = 1e-3, 0.1, 10, 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official_run")


class PolyScheduler(torch.optim.lr_scheduler.LRScheduler):
    """The official schedule: warm-up base·e/W, then base·(1 − (e − W)/(M − W))², with the
    official attributes (base_lr, warmup_lr_init, max_steps, warmup_steps, power) and last_epoch
    reset to -1 after the base class's initial step."""

    def __init__(self, optimizer, base_lr, max_steps, warmup_steps, last_epoch=-1):
        self.base_lr = base_lr
        self.warmup_lr_init = 0.0001
        self.max_steps = max_steps
        self.warmup_steps = warmup_steps
        self.power = 2
        super().__init__(optimizer, -1)
        self.last_epoch = last_epoch

    def get_lr(self):
        e = self.last_epoch
        if e == -1:
            lr = self.warmup_lr_init
        elif e < self.warmup_steps:
            lr = self.base_lr * float(e) / float(self.warmup_steps)
        else:
            lr = self.base_lr * pow(1 - float(e - self.warmup_steps) / float(self.max_steps - self.warmup_steps), self.power)
        return [lr for _ in self.optimizer.param_groups]


def sub(**children):
    m = nn.Module()
    for k, v in children.items():
        setattr(m, k, v)
    return m


def backbone():
    """Parameter container with the official names and registration order (no forward)."""
    g = torch.Generator().manual_seed(11)
    net = nn.Module()
    net.pos_embed = nn.Parameter(torch.randn(1, N, D, generator=g) * 0.02)
    net.mask_token = nn.Parameter(torch.randn(1, 1, D, generator=g) * 0.02)
    net.patch_embed = sub(proj=nn.Conv2d(3, D, PATCH, PATCH))
    net.blocks = nn.ModuleList([
        sub(norm1=nn.LayerNorm(D), attn=sub(qkv=nn.Linear(D, 3 * D, bias=False), proj=nn.Linear(D, D)),
            norm2=nn.LayerNorm(D), mlp=sub(fc1=nn.Linear(D, HIDDEN), fc2=nn.Linear(HIDDEN, D)))
        for _ in range(DEPTH)])
    net.norm = nn.LayerNorm(D)
    net.feature = nn.Sequential(nn.Linear(D * N, D, bias=False), nn.BatchNorm1d(D, eps=2e-5),
                                nn.Linear(D, EMB, bias=False), nn.BatchNorm1d(EMB, eps=2e-5))
    net.senet = nn.Sequential(nn.Linear(D * N, N, bias=False), nn.ReLU(inplace=True), nn.Linear(N, N, bias=False), nn.Sigmoid())
    with torch.no_grad():  # no constant tensor: a value mapped to the wrong place shows
        for name, t in net.state_dict().items():
            if t.dtype != torch.float32:
                t.fill_(3)  # num_batches_tracked
            elif "running_var" in name:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return net


def shard(r, w):
    num_local = CLASSES // w + int(r < CLASSES % w)
    start = CLASSES // w * r + min(r, CLASSES % w)
    return start, num_local


def gradients(net, centres, it):
    g = torch.Generator().manual_seed(100 + it)
    grads = {n: torch.randn(p.shape, generator=g) for n, p in net.named_parameters() if n != "mask_token"}
    return grads, torch.randn(centres.shape, generator=g)


def make_optimizer(kind, params):
    if kind == "adamw":
        return torch.optim.AdamW(params=params, lr=LR, weight_decay=WD)
    return torch.optim.SGD(params=params, lr=0.1, momentum=0.9, weight_decay=5e-4)


def run(kind, world):
    """Two official iterations at world size `world`; returns the per-rank states and rank 0's net."""
    torch.manual_seed(0)
    net0 = backbone()
    full = torch.randn(CLASSES, EMB, generator=torch.Generator().manual_seed(5)) * 0.01
    ranks = []
    for r in range(world):
        start, n = shard(r, world)
        net = copy.deepcopy(net0)
        centres = nn.Parameter(full[start:start + n].clone())
        opt = make_optimizer(kind, [{"params": net.parameters()}, {"params": [centres]}])
        sched = PolyScheduler(optimizer=opt, base_lr=opt.param_groups[0]["lr"], max_steps=MAX_STEPS, warmup_steps=WARMUP, last_epoch=-1)
        ranks.append((net, centres, opt, sched, start, n))
    global_step = 0
    for it in range(2):
        global_step += 1
        grads, centre_grad = gradients(net0, full, it)
        for net, centres, opt, sched, start, n in ranks:
            for name, p in net.named_parameters():
                p.grad = grads[name].clone() if name in grads else None
            centres.grad = centre_grad[start:start + n].clone()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5)
            opt.step()
            opt.zero_grad()
            sched.step()
    return ranks, global_step


def save(ranks, global_step, folder):
    os.makedirs(folder, exist_ok=True)
    for r, (net, centres, opt, sched, _, _) in enumerate(ranks):
        checkpoint = {
            "epoch": 1,
            "global_step": global_step,
            "state_dict_backbone": net.state_dict(),
            # PartialFCAdamW.state_dict() at sample_rate 1: an OrderedDict of the centres as "weight"
            "state_dict_softmax_fc": OrderedDict(weight=centres.data.detach()),
            "state_optimizer": opt.state_dict(),
            "state_lr_scheduler": sched.state_dict(),
        }
        torch.save(checkpoint, os.path.join(folder, f"checkpoint_gpu_{r}.pt"))


def expected(ranks, prefix, out, kind):
    net, centres, opt, _, _, _ = ranks[0]
    for name, t in net.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            out[prefix + name] = t.numpy().copy()
    out[prefix + "partial_fc.weight"] = centres.detach().numpy().copy()
    moments = ["exp_avg", "exp_avg_sq"] if kind == "adamw" else ["momentum_buffer"]
    for name, p in list(net.named_parameters()) + [("partial_fc.weight", centres)]:
        if p in opt.state:
            for m in moments:
                out[f"{prefix}optimizer.{m}.{name}"] = opt.state[p][m].numpy().copy()
    # One more optimizer step (no clipping) on given gradients: what the imported state must continue as.
    grads, centre_grad = gradients(net, centres, 7)
    for name, p in net.named_parameters():
        p.grad = grads.get(name)
        if name in grads:
            out[f"{prefix}next_grad.{name}"] = grads[name].numpy().copy()
    centres.grad = centre_grad
    out[prefix + "next_grad.partial_fc.weight"] = centre_grad.numpy().copy()
    out[prefix + "next_lr"] = np.array([opt.param_groups[0]["lr"]])
    opt.step()
    for name, p in list(net.named_parameters()) + [("partial_fc.weight", centres)]:
        out[f"{prefix}next.{name}"] = p.detach().numpy().copy()


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    out = {}
    w1, steps = run("adamw", 1)
    save(w1, steps, os.path.join(OUT, "w1"))
    torch.save(w1[0][0].state_dict(), os.path.join(OUT, "model.pt"))
    w2, _ = run("adamw", 2)
    save(w2, steps, os.path.join(OUT, "w2"))
    sgd, _ = run("sgd", 1)
    save(sgd, steps, os.path.join(OUT, "sgd"))
    expected(w1, "", out, "adamw")
    expected(sgd, "sgd.", out, "sgd")
    np.savez(os.path.join(OUT, "expected.npz"), **out)
    print(f"torch {torch.__version__}: wrote {OUT}")


if __name__ == "__main__":
    main()
