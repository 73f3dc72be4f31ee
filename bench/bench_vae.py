"""Time Wan2.1 VAE encode/decode on this machine (random weights; timing does not depend on them).

Example:
    python3 bench/bench_vae.py --config tiny --frames 9 --size 64 64
    python3 bench/bench_vae.py --config wan2.1 --frames 5 --size 64 64 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psutil
import torch

from worldmodel.vae import WanVAE, latent_frame_count, load_vae_config


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up (allocator, oneDNN kernel selection)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny", help="VAE config name or YAML path (tiny, wan2.1)")
    parser.add_argument("--frames", type=int, default=9, help="clip length, 1 + 4k")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (median shown)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--bf16-autocast", action="store_true", help="run under CPU bfloat16 autocast")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_vae_config(args.config)
    latent_frame_count(args.frames)
    torch.manual_seed(0)
    vae = WanVAE(cfg).eval()
    params = sum(p.numel() for p in vae.parameters())
    h, w = args.size
    clip = torch.rand(args.batch, 3, args.frames, h, w) * 2 - 1
    print(f"config={args.config} params={params / 1e6:.2f}M clip=(B={args.batch}, T={args.frames}, {h}x{w}) "
          f"threads={torch.get_num_threads()} cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f} "
          f"autocast_bf16={args.bf16_autocast} torch={torch.__version__}")
    rows = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16_autocast):
        for chunked in (True, False):
            t_enc, z = timed(lambda c=chunked: vae.encode(clip, chunked=c), args.repeats)
            t_dec, x = timed(lambda c=chunked, z=z: vae.decode(z, chunked=c), args.repeats)
            rows.append((chunked, t_enc, t_dec, tuple(z.shape), tuple(x.shape)))
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"{'mode':<9} {'encode s':>9} {'decode s':>9} {'enc fps':>8} {'dec fps':>8}  latents -> video")
    for chunked, t_enc, t_dec, zs, xs in rows:
        frames = args.batch * args.frames
        print(f"{'chunked' if chunked else 'one-shot':<9} {t_enc:9.3f} {t_dec:9.3f} {frames / t_enc:8.1f} "
              f"{frames / t_dec:8.1f}  {zs} -> {xs}")
    print(f"process RSS after runs: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
