"""Benchmark of the A2World network and sampler.

CPU (always): the tiny config at the release's token layout (3 views x 6 latent frames x 16x16 = 4608
tokens), forward time and tokens/s, plus a few-step sampling run.
GPU (when CUDA is available): the full 2B network with random weights in bf16 at 3 views x 6 latent
frames x 256 tokens (SDPA), eager and with the blocks compiled (torch.compile), peak memory, and a whole
20-frame prediction (35 steps = 36 calls, `release` preset) and the `fast_4` preset.

    python3 bench/bench_worldmodel.py              # CPU part (+ GPU part if CUDA is present)
    python3 bench/bench_worldmodel.py --no-compile # skip the torch.compile measurement
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worldmodel.configs import load_net_config
from worldmodel.diffusion import SamplerConfig, sample
from worldmodel.network import A2WorldNet, build_net

VIEWS, FRAMES, LATENT_HW = 3, 6, 32  # 32x32 latent -> 16x16 = 256 tokens per latent frame


def inputs(B: int, device: torch.device, dtype: torch.dtype, hw: int = LATENT_HW):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 16, VIEWS * FRAMES, hw, hw, generator=g).to(device, dtype)
    t = torch.rand(B, VIEWS * FRAMES, generator=g).to(device, dtype)
    a = (torch.randn(B, 20, 14, generator=g) * 0.05).to(device, dtype)
    ids = torch.tensor([[0, 2, 1]] * B, device=device)
    cond = torch.zeros(B, 1, VIEWS * FRAMES, hw, hw, device=device, dtype=dtype)
    cond[:, :, ::FRAMES] = 1
    return x, t, a, ids, cond


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_forward(net: A2WorldNet, device: torch.device, dtype: torch.dtype, repeats: int, warmup: int,
                 hw: int = LATENT_HW) -> list[float]:
    x, t, a, ids, cond = inputs(1, device, dtype, hw)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync(device)
            t0 = time.perf_counter()
            net(x, t, a, ids, cond)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return times


def report(label: str, times: list[float], tokens: int) -> None:
    med = statistics.median(times)
    print(f"{label}: median {med * 1e3:.1f} ms over {len(times)} runs "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}); {tokens / med:,.0f} tokens/s")


def time_sampling(net: A2WorldNet, device: torch.device, preset: str, hw: int = LATENT_HW) -> float:
    x, _, a, ids, _ = inputs(1, device, torch.float32, hw)
    sync(device)
    t0 = time.perf_counter()
    sample(net, x, a, ids, seed=0, sampler=preset)
    sync(device)
    return time.perf_counter() - t0


def cpu_part(repeats: int) -> None:
    torch.manual_seed(0)
    net = build_net(load_net_config("tiny")).eval()
    tokens = VIEWS * FRAMES * (LATENT_HW // 2) ** 2
    print(f"CPU: torch {torch.__version__}, {torch.get_num_threads()} threads, tiny config "
          f"(D={net.config.model_channels}, {net.config.num_blocks} blocks), {VIEWS} views x {FRAMES} latent "
          f"frames x {(LATENT_HW // 2) ** 2} tokens = {tokens} tokens")
    report("CPU tiny forward fp32", time_forward(net, torch.device("cpu"), torch.float32, repeats, 2), tokens)
    for preset in ("fast_4",):
        cfg = SamplerConfig.preset(preset)
        dt = time_sampling(net, torch.device("cpu"), preset)
        print(f"CPU tiny sampling '{preset}' ({cfg.network_calls} calls): {dt:.2f} s")


def materialise(config: str, device: torch.device) -> A2WorldNet:
    """Random bf16 network of `config` built on meta and materialised directly on `device`."""
    net = build_net(load_net_config(config), device="meta")
    net.to_empty(device=device)
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "reset_parameters") and module is not net:
                module.reset_parameters()
        net.init_weights()
        for p in net.parameters():  # AdaLN-Zero leaves blocks as identity; randomise for realistic values
            if p.ndim == 2 and torch.count_nonzero(p) == 0:
                p.normal_(0.0, 0.02)
    return net.to(torch.bfloat16).eval()


def peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a (not CUDA)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_part(repeats: int, compile_blocks: bool, device: torch.device | None = None,
             config: str = "a2world_2b") -> None:
    """Full-size measurements; `device`/`config` exist so the code path can be smoke-tested on CPU."""
    device = device or torch.device("cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"GPU: {name}, torch {torch.__version__}, config {config}")
    net = materialise(config, device)
    tokens = VIEWS * FRAMES * (LATENT_HW // 2) ** 2
    reset_peak(device)
    report("GPU full forward bf16 eager (SDPA)", time_forward(net, device, torch.bfloat16, repeats, 3), tokens)
    print(f"GPU peak memory (eager forward, inference): {peak_gib(device)}")
    for preset in ("release", "fast_4"):
        cfg = SamplerConfig.preset(preset)
        dt = time_sampling(net, device, preset)
        print(f"GPU full 20-frame prediction '{preset}' ({cfg.network_calls} calls, 3 views): {dt:.2f} s")
    if compile_blocks:
        for block in net.blocks:
            block.compile()
        t0 = time.perf_counter()
        time_forward(net, device, torch.bfloat16, 1, 2)
        print(f"GPU torch.compile warm-up: {time.perf_counter() - t0:.1f} s")
        reset_peak(device)
        report("GPU full forward bf16 compiled blocks", time_forward(net, device, torch.bfloat16, repeats, 2),
               tokens)
        print(f"GPU peak memory (compiled forward): {peak_gib(device)}")
        dt = time_sampling(net, device, "release")
        print(f"GPU full 20-frame prediction 'release' compiled: {dt:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement (GPU)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU part even if CUDA is present")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cpu_part(args.repeats)
    if args.cpu_only:
        return 0
    if torch.cuda.is_available():
        gpu_part(args.repeats, not args.no_compile)
    else:
        print("GPU: no CUDA device; full-size measurements not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
