"""How TimesCLIP's training step scales with the number of variates (not a test: it prints measurements).

Usage::

    python -m benchmarks variates [--variates 7 21 137 321 862] [--batch-size 8] [--backbone compact]

For each variate count ``V`` (7: ETT; 21: Weather; 137: Solar; 321: Electricity; 862: Traffic), a fresh process
builds the network the Darts model builds for ``V`` target variates (L = 96, H = 96, random weights) and times
training steps (forward, the forecast and alignment losses, backward, AdamW step) on random windows of that shape,
the synthetic stand-in of Electricity- and Traffic-shaped data that are not on this machine. Printed per ``V``: the
median seconds per step (after one warm-up step), the seconds per step without the vision embedding cache (every
step renders and encodes its charts, as in the first epoch), and the peak resident memory of the process
(``ru_maxrss``) together with its increase over the same process right before the first step. A Markdown table
follows, with the memory each added variate costs between consecutive rows: constant when memory grows linearly
(the first row's includes the optimiser's state, which does not depend on ``V``). ``--json PATH`` also writes the
rows, with the network's parameter counts per ``V``. ``--in-process`` measures in this process instead, one
measurement after another (no interpreter start per measurement; the memory columns then show this process's peak,
not each measurement's alone). A smoke run: ``--variates 1 2 --batch-size 2 --steps 1 --backbone tiny --in-process``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.machine import machine_line
from benchmarks.runner import write_json_atomic
from benchmarks.study import Command


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(n_variates: int, batch_size: int, backbone: str, steps: int, cache: bool) -> dict:
    """Time ``steps`` training steps for ``n_variates`` variates in this process (see the module docstring)."""
    from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork

    torch.manual_seed(0)
    config = TimesCLIPConfig(
        96, 96, n_targets=n_variates, backbone=backbone, pretrained=False, embedding_cache_mb=1024.0 if cache else 0.0
    )
    network = TimesCLIPNetwork(config).train()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch_size, 96, n_variates).cumsum(dim=1)
    y = torch.randn(batch_size, 96, n_variates)
    before = _rss_mb()
    times = []
    for _ in range(steps + 1):  # the same windows every step: the cache serves every step after the first
        start = time.perf_counter()
        out = network(x, return_alignment=True)
        loss = torch.nn.functional.mse_loss(out.prediction[..., 0], y)
        total = network.losses(loss, out.alignment_loss, "train").total
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {
        "variates": n_variates,
        "parameters": sum(p.numel() for p in network.parameters()),
        "trainable_parameters": sum(p.numel() for p in network.parameters() if p.requires_grad),
        "seconds_per_step": statistics.median(times[1:]),
        "first_step_seconds": times[0],
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": before,
    }


def _in_subprocess(n_variates: int, batch_size: int, backbone: str, steps: int, cache: bool) -> dict:
    code = (
        "import json, sys; from benchmarks.commands.variates import measure; "
        f"print(json.dumps(measure({n_variates}, {batch_size}, {backbone!r}, {steps}, {cache})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _in_this_process(n_variates: int, batch_size: int, backbone: str, steps: int, cache: bool) -> dict:
    with torch.random.fork_rng(devices=[]):  # `measure` seeds torch's generator: the caller's draws are unchanged
        return measure(n_variates, batch_size, backbone, steps, cache)


class Variates(Command):
    """TimesCLIP's training step against the number of variates (time, peak memory)."""

    name = "variates"
    flags = ("backbone", "verbose")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--variates", type=int, nargs="+", default=[7, 21, 137, 321, 862])
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--steps", type=int, default=3, help="timed steps after the warm-up step")
        parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
        parser.add_argument("--in-process", action="store_true",
                            help="measure in this process, not one fresh process per measurement (smoke runs: the "
                            "memory columns are then this process's peak)")  # fmt: skip

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return False  # the measurements run in subprocesses

    def execute(self, args: argparse.Namespace) -> int:
        """Print the table, one row per variate count as it is measured (and write the rows to ``--json``)."""
        print(f"machine: {machine_line()}; backbone `{args.backbone}`, random")
        steps = f"median of {args.steps} steps after a warm-up"
        print(f"weights; batch {args.batch_size} windows of L = 96, H = 96; {steps}\n")
        print(
            "| variates | s / step (cache on) | s / step (cache off) | peak RSS (MiB) | RSS increase in training (MiB) "
            "| MiB per added variate |\n|---|---|---|---|---|---|"
        )
        previous = (0, 0.0)
        rows = []
        run = _in_this_process if args.in_process else _in_subprocess
        for n in args.variates:
            cached = run(n, args.batch_size, args.backbone, args.steps, True)
            uncached = run(n, args.batch_size, args.backbone, args.steps, False)
            increase = uncached["peak_rss_mb"] - uncached["rss_before_mb"]
            per_variate = (increase - previous[1]) / (n - previous[0])
            print(
                f"| {n} | {cached['seconds_per_step']:.2f} | {uncached['seconds_per_step']:.2f} | "
                f"{uncached['peak_rss_mb']:,.0f} | {increase:,.0f} | {per_variate:.2f} |",
                flush=True,
            )
            rows.append(
                {"variates": n, "parameters": uncached["parameters"],
                 "trainable_parameters": uncached["trainable_parameters"],
                 "seconds_per_step_cache_on": cached["seconds_per_step"],
                 "seconds_per_step_cache_off": uncached["seconds_per_step"], "peak_rss_mb": uncached["peak_rss_mb"],
                 "rss_increase_mb": increase, "mb_per_added_variate": per_variate}
            )  # fmt: skip
            previous = (n, increase)
        if args.json is not None:
            settings = {"backbone": args.backbone, "batch_size": args.batch_size, "steps": args.steps}
            write_json_atomic(args.json, {"machine": machine_line(), **settings, "rows": rows})
            print(f"\nwrote {args.json}")
        return 0
