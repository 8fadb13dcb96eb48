"""The pretraining loop: sampled windows of several lengths, progress, atomic checkpoints, resume, and the output.

The output directory is a ``transformers.CLIPModel.save_pretrained`` directory (``config.json``,
``model.safetensors``) that ``TimesCLIPModel(backbone=DIR)`` and the pytorch-forecasting adapter load like any
CLIP checkpoint, plus ``pretraining.json`` (corpus, steps, losses, seed, command). While it runs, the directory
holds ``checkpoint.pt``; a run started again with the same arguments resumes from it and loses nothing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darts_timesclip._checks import check_positive_int
from darts_timesclip._io import atomic_path, write_text_atomic
from darts_timesclip.backbones.loading import load_pretrained_towers, resolve_backbone, tower_config_kwargs
from darts_timesclip.network.config import TimesCLIPConfig
from darts_timesclip.pretraining.corpus import Corpus, build_corpus
from darts_timesclip.pretraining.objectives import OBJECTIVES, TimesCLIPPretrainer
from darts_timesclip.pretraining.options import DEFAULT_OBJECTIVE

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
RECORD = "pretraining.json"
DEFAULT_CONTEXT_LENGTHS = (48, 96, 192, 336)
N_COLOURS = 10  # tab10: the colours variates are drawn in when forecasting


class WindowSampler:
    """Batches of windows ``[B, L]``: ``L`` drawn per batch from ``context_lengths``, series uniformly among those
    long enough, the window's start uniformly within the series. The state is the generator's (checkpointed)."""

    def __init__(self, corpus: Corpus, context_lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.corpus = corpus
        self.batch_size = batch_size
        lengths = np.array([len(s) for s in corpus.series])
        self.eligible = {L: np.flatnonzero(lengths >= L) for L in context_lengths}
        self.context_lengths = [L for L in context_lengths if len(self.eligible[L])]
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """``(windows [B, L] float32, colour_index [B])``."""
        length = int(self.rng.choice(self.context_lengths))
        which = self.rng.choice(self.eligible[length], size=self.batch_size)
        windows = np.empty((self.batch_size, length), dtype=np.float32)
        for row, i in enumerate(which):
            values = self.corpus.series[i]
            start = int(self.rng.integers(0, len(values) - length + 1))
            windows[row] = values[start : start + length]
        return windows, self.rng.integers(0, N_COLOURS, size=self.batch_size)


def pretrain_backbone(
    series: Any = None,
    output_dir: str | Path = "pretrained-backbone",
    backbone: str = "compact",
    *,
    data: Sequence[str | Path] = (),
    synthetic: int = 0,
    max_steps: int = 1000,
    batch_size: int = 64,
    context_lengths: Sequence[int] = DEFAULT_CONTEXT_LENGTHS,
    patch_length: int = 16,
    patch_stride: int = 8,
    objective: str = DEFAULT_OBJECTIVE,
    contrastive_weight: float = 1.0,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.01,
    seed: int = 0,
    checkpoint_every: int = 100,
    log_every: int = 25,
    device: str | torch.device | None = None,
    command: str | None = None,
) -> Path:
    """Pretrain both CLIP towers of a TimesCLIP backbone on time series; save a directory that loads as a backbone.

    Parameters
    ----------
    series
        A Darts ``TimeSeries`` or a sequence of them (any variates and lengths): every component is a sample
        series. May be ``None`` when ``data`` or ``synthetic`` supply the corpus.
    output_dir
        Where the backbone is written (created if needed). A directory holding another run's checkpoint or another
        backbone is refused; one holding this run's checkpoint is resumed.
    backbone
        Architecture to pretrain: a preset (``"compact"``, ``"tiny"``), or a ``save_pretrained`` directory / hub id
        whose weights are the starting point (continued pretraining).
    data
        CSV / CSV.GZ files or directories of them; every numeric column is a sample series (a date column is
        dropped).
    synthetic
        Number of synthetic series (:func:`~darts_timesclip.pretraining.synthetic.synthetic_series`) to add.
    max_steps
        Optimisation steps (the bound on the work).
    batch_size
        Windows per step.
    context_lengths
        Window lengths, one drawn per step, so the towers are not tied to one ``input_chunk_length``.
    patch_length, patch_stride
        Patching of the numeric view; fine-tune with the same values.
    objective
        Temporal objective of the numeric tower: ``"next-patch"`` (default), ``"masked"`` or
        ``"contrastive-only"`` (see :mod:`darts_timesclip.pretraining.objectives`).
    contrastive_weight
        Weight of the contrastive loss against the temporal loss.
    learning_rate, weight_decay
        AdamW settings; the rate warms up linearly over 5% of the steps, then decays by a cosine to 0.
    seed
        Seed of the initialisation, the synthetic corpus and the window sampler.
    checkpoint_every, log_every
        Steps between checkpoints and between progress lines (logger ``darts_timesclip.pretraining``).
    device
        Torch device; default: CUDA where available (with bf16 autocast), else CPU.
    command
        The command line to record in ``pretraining.json`` (the CLI passes its own).

    Returns
    -------
    pathlib.Path
        ``output_dir``.

    Raises
    ------
    ValueError
        For bad arguments, an empty or unusable corpus (no series, every series too short, infinite values, a
        non-numeric CSV column), or an output directory that holds a different backbone or run.
    """
    for name, value in (
        ("max_steps", max_steps),
        ("batch_size", batch_size),
        ("checkpoint_every", checkpoint_every),
        ("log_every", log_every),
    ):
        check_positive_int(name, value)
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be at least 2 (the contrastive loss needs negatives), got {batch_size}.")
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {OBJECTIVES}, got `{objective!r}`.")
    if not context_lengths:
        raise ValueError("`context_lengths` must name at least one window length.")
    context_lengths = sorted({int(L) for L in context_lengths})
    spec = resolve_backbone(backbone)
    # the config checks the patching against the text tower's positions for the longest context
    TimesCLIPConfig(
        max(context_lengths),
        1,
        backbone=backbone,
        patch_length=patch_length,
        patch_stride=patch_stride,
        vision_config=spec.vision_config,
        text_config=spec.text_config,
        argument_names={"input_chunk_length": "max(context_lengths)"},
    )
    if min(context_lengths) < patch_length:
        raise ValueError(f"`context_lengths` {context_lengths} must all be at least `patch_length={patch_length}`.")

    corpus = build_corpus(series, data, synthetic, min_length=min(context_lengths), seed=seed)
    output_dir = Path(output_dir)
    run = {
        "backbone": backbone,
        "objective": objective,
        "context_lengths": context_lengths,
        "patch_length": patch_length,
        "patch_stride": patch_stride,
        "batch_size": batch_size,
        "contrastive_weight": contrastive_weight,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "seed": seed,
        "max_steps": max_steps,
        "corpus": corpus.fingerprint(),
    }
    state = _prepare_output(output_dir, run, spec)
    if state == "done":
        logger.info("`%s` already holds this pretrained backbone; nothing to do.", output_dir)
        return output_dir

    torch.manual_seed(seed)
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    model = TimesCLIPPretrainer(
        spec.vision_config,
        spec.text_config,
        patch_length=patch_length,
        patch_stride=patch_stride,
        max_context=max(context_lengths),
        objective=objective,
        contrastive_weight=contrastive_weight,
    )
    if spec.pretrained:
        model.load_towers(*load_pretrained_towers(backbone))
    model.to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    warmup = max(1, int(0.05 * max_steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, max_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    sampler = WindowSampler(corpus, context_lengths, batch_size, seed)
    history: list[dict[str, float]] = []
    step, elapsed = 0, 0.0
    checkpoint_path = output_dir / CHECKPOINT
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        sampler.rng.bit_generator.state = checkpoint["sampler"]
        torch.set_rng_state(checkpoint["torch_rng"])
        step, elapsed, history = checkpoint["step"], checkpoint["elapsed"], checkpoint["history"]
        logger.info("Resuming `%s` at step %d of %d.", output_dir, step, max_steps)

    logger.info(
        "Pretraining `%s` (%s) on %d series, %d points; %d steps of %d windows, contexts %s, on %s.",
        backbone,
        objective,
        len(corpus),
        corpus.n_points,
        max_steps,
        batch_size,
        context_lengths,
        device,
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    window_start, windows_seen = time.perf_counter(), 0
    running: dict[str, list[float]] = {"total": [], "contrastive": [], "temporal": []}
    while step < max_steps:
        started = time.perf_counter()
        windows, colours = sampler.sample()
        with autocast:
            losses = model(torch.from_numpy(windows).to(device), torch.from_numpy(colours).to(device))
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        elapsed += time.perf_counter() - started
        windows_seen += len(windows)
        running["total"].append(losses.total.item())
        running["contrastive"].append(losses.contrastive.item())
        if losses.temporal is not None:
            running["temporal"].append(losses.temporal.item())
        if step % log_every == 0 or step == max_steps:
            rate = windows_seen / max(time.perf_counter() - window_start, 1e-9)
            entry = {"step": step, **{k: float(np.mean(v)) for k, v in running.items() if v}, "windows_per_s": rate}
            history.append(entry)
            temporal = f"  {objective} {entry['temporal']:.4f}" if "temporal" in entry else ""
            logger.info(
                "step %d/%d  loss %.4f  contrastive %.4f%s  %.1f windows/s",
                step,
                max_steps,
                entry["total"],
                entry["contrastive"],
                temporal,
                rate,
            )
            running = {k: [] for k in running}
            window_start, windows_seen = time.perf_counter(), 0
        if step % checkpoint_every == 0 and step < max_steps:
            with atomic_path(checkpoint_path) as tmp:
                torch.save(
                    {
                        "run": run,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "sampler": sampler.rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(),
                        "step": step,
                        "elapsed": elapsed,
                        "history": history,
                    },
                    tmp,
                )

    _save_backbone(model, spec, output_dir)
    record = {
        "format": "darts-timesclip pretrained backbone",
        "run": run,
        "corpus": corpus.summary(),
        "steps": step,
        "train_seconds": round(elapsed, 1),
        "windows_per_second": round(step * batch_size / max(elapsed, 1e-9), 1),
        "device": str(device),
        "device_name": _device_name(device),
        "history": history,
        "final_losses": history[-1] if history else {},
        "command": command or " ".join(sys.argv),
        "torch": torch.__version__,
    }
    write_text_atomic(output_dir / RECORD, json.dumps(record, indent=2, default=str))
    checkpoint_path.unlink(missing_ok=True)
    logger.info("Saved the pretrained backbone to `%s` (%.0f s, %d steps).", output_dir, elapsed, step)
    return output_dir


def _device_name(device: torch.device) -> str:
    """The processor behind ``device``, for the record: ``"NVIDIA H100 ..."`` or ``"AMD EPYC, 2 threads"``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _tower_shapes(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size", "patch_size")
    return {k: config.get(k) for k in keys if k in config}


def _prepare_output(output_dir: Path, run: dict[str, Any], spec: Any) -> str:
    """``"new"``, ``"resume"`` or ``"done"``; raises where the directory holds something else."""
    output_dir.mkdir(parents=True, exist_ok=True)
    record, checkpoint, config = output_dir / RECORD, output_dir / CHECKPOINT, output_dir / "config.json"
    if record.exists():
        previous = json.loads(record.read_text()).get("run")
        if previous == run:
            return "done"
        raise ValueError(
            f"`{output_dir}` already holds a pretrained backbone made with other settings ({previous}); pass a new "
            "`output_dir`."
        )
    if checkpoint.exists():
        previous = torch.load(checkpoint, map_location="cpu", weights_only=False).get("run")
        if previous != run:
            raise ValueError(
                f"`{output_dir}` holds the checkpoint of another pretraining run ({previous}); pass the same "
                "arguments to resume it, or a new `output_dir`."
            )
        return "resume"
    if config.exists():
        from transformers import CLIPConfig

        existing = CLIPConfig.from_pretrained(output_dir)
        same = _tower_shapes(existing.vision_config.to_dict()) == _tower_shapes(spec.vision_config) and _tower_shapes(
            existing.text_config.to_dict()
        ) == _tower_shapes(spec.text_config)
        raise ValueError(
            f"`{output_dir}` already holds a {'' if same else 'different '}CLIP backbone (`config.json`) that this "
            "run did not write; pass a new `output_dir` rather than overwrite it."
        )
    return "new"


def _save_backbone(model: TimesCLIPPretrainer, spec: Any, output_dir: Path) -> None:
    """Write the towers as a ``CLIPModel.save_pretrained`` directory (files replaced atomically)."""
    from transformers import CLIPConfig, CLIPModel

    from darts_timesclip.backbones.compat import quiet_transformers

    with quiet_transformers():
        text, vision = tower_config_kwargs(spec.text_config), tower_config_kwargs(spec.vision_config)
        clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision))
    clip.text_model.load_state_dict(model.numeric.clip.state_dict())
    clip.vision_model.load_state_dict(model.vision.clip.state_dict())
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".save-"))
    try:
        with quiet_transformers():
            clip.to("cpu", torch.float32).save_pretrained(staging)
        for file in staging.iterdir():
            os.replace(file, output_dir / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
