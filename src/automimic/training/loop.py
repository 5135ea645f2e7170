"""The one training loop every algorithm uses: AdamW, warm-up + cosine schedule, clipping, resume.

It trains on :func:`~automimic.device.compute_device` (CUDA when available, see :mod:`automimic.device`);
batches are sampled on the CPU and moved there, validation rollouts run on a CPU copy, and the
policy it returns, like every checkpoint it writes, is on the CPU.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm import tqdm

from automimic.checkpoint_io import read_checkpoint
from automimic.data.transitions import Transitions
from automimic.device import compute_device, to_device
from automimic.policies import Policy, policy_payload, save_policy
from automimic.training.ema import EMA
from automimic.training.run_dir import RunDir

Validator = Callable[[Policy], float]


#: Steps after which training prints its expected duration.
ESTIMATE_AFTER = 20


@dataclass
class TrainConfig:
    """Optimisation settings.

    Args:
        steps: gradient steps.
        batch_size: samples per step (drawn with replacement).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up before the cosine decay.
        grad_clip: max global gradient norm (0 disables clipping).
        seed: seeds weight init and batch sampling.
        log_every: steps between metric records.
        checkpoint_every: steps between ``last.pt`` saves (the resume points).
        validate_every: steps between validation rollouts (0: never; best = lowest training loss).
        ema_decay: keep an exponential moving average of the weights with this decay, saved as
            ``checkpoints/ema.pt`` (0 disables it).
    """

    steps: int = 5000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000
    validate_every: int = 0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be positive, got {self.lr}")


def _schedule(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_policy(policy: Policy, data: Transitions, cfg: TrainConfig, run: RunDir,
                 validate: Validator | None = None, progress: bool = True) -> Policy:
    """Train ``policy`` on ``data`` into ``run``; continue from ``run``'s ``last.pt`` if it exists.

    The best policy is chosen by ``validate(policy)`` (higher is better, e.g. success on validation
    seeds) every ``validate_every`` steps, or by the lowest logged training loss without one.
    With ``ema_decay > 0`` the moving average is updated after every step and written to
    ``checkpoints/ema.pt`` at the end. Returns the policy holding the final weights, on the CPU.

    Training runs on :func:`~automimic.device.compute_device`; ``validate`` always gets a policy on
    the CPU (rollouts step CPU environments).
    """
    device = compute_device()
    on_cpu = device.type == "cpu"
    # Before the optimiser exists, so its state is created beside the weights it updates.
    policy.to(device)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, -math.inf
    ema = EMA(policy, cfg.ema_decay) if cfg.ema_decay > 0 else None
    last = run.checkpoint("last")
    if last.exists():
        state = read_checkpoint(last, "training checkpoint")
        policy.load_state_dict(state["policy_checkpoint"]["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if not on_cpu and state.get("cuda_rng") is not None:
            # The GPU draws its own training noise (dropout, diffusion noise): resume it too.
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, best = state["step"], state["best"]
        if ema is not None:
            ema.model.load_state_dict(state["ema"])
        run.drop_metrics_after(step)
    else:
        # Killed before its first checkpoint: the run starts over, so its earlier records go.
        run.drop_metrics_after(-1)

    def save_last() -> None:
        payload = {"policy_checkpoint": policy_payload(policy), "optimizer": opt.state_dict(),
                   "scheduler": sched.state_dict(), "generator": gen.get_state(),
                   "torch_rng": torch.get_rng_state(), "step": step, "best": best,
                   "ema": ema.model.state_dict() if ema is not None else None}
        if not on_cpu:
            payload["cuda_rng"] = torch.cuda.get_rng_state(device)
        tmp = last.with_suffix(".tmp")
        last.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        tmp.replace(last)

    def consider_best(score: float) -> None:
        nonlocal best
        if score >= best:  # ties go to the later, longer-trained weights
            best = score
            save_policy(policy, run.checkpoint("best"), extra={"step": step, "score": score})

    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=not progress)
    window: list[float] = []
    t0 = start = time.time()
    first = step
    policy.train()
    while step < cfg.steps:
        idx = torch.randint(len(data), (cfg.batch_size,), generator=gen)
        # Indices come from the CPU generator on every device, so the batches do not depend on it.
        losses = policy.training_loss(to_device(data.batch(idx, policy.history, policy.chunk), device))
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        policy.after_optimizer_step()
        if ema is not None:
            ema.update(policy)
        step += 1
        window.append(losses["loss"].item())
        bar.update(1)
        if progress and step - first == ESTIMATE_AFTER and step < cfg.steps:
            # One line a user sees early, instead of waiting for the bar to settle on its estimate.
            rate = ESTIMATE_AFTER / max(time.time() - start, 1e-9)
            where = "" if on_cpu else f" on {device}"
            tqdm.write(f"training: {cfg.steps - first} steps of {cfg.batch_size} samples{where}, about "
                       f"{(cfg.steps - first) / rate / 60:.1f} min at the first {ESTIMATE_AFTER} steps' "
                       f"{rate:.0f} steps/s")
        log_now = step % cfg.log_every == 0 or step == cfg.steps
        val_now = validate is not None and cfg.validate_every > 0 and (
            step % cfg.validate_every == 0 or step == cfg.steps)
        if log_now or val_now:
            record = {k: v.item() for k, v in losses.items()}
            record["loss"] = sum(window) / len(window)
            record["lr"] = sched.get_last_lr()[0]
            record["samples_per_s"] = len(window) * cfg.batch_size / max(1e-9, time.time() - t0)
            window, t0 = [], time.time()
            if val_now:
                policy.eval()
                record["val_success"] = validate(policy if on_cpu else copy.deepcopy(policy).cpu())
                policy.train()
                consider_best(record["val_success"])
            elif validate is None or cfg.validate_every == 0:
                consider_best(-record["loss"])
            run.log(step, record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_last()
    bar.close()
    run.close()
    if ema is not None:
        save_policy(ema.model, run.checkpoint("ema"), extra={"step": step, "decay": cfg.ema_decay})
    policy.eval()
    return policy.cpu()
