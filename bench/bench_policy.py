"""Policy latency: tiny-config chunk latency on CPU (torch vs onnxruntime), policy-server round-trip
overhead over loopback, and (when a CUDA device is present) full-size chunk latency for 3 views at
256x256 with 5 and 10 steps in bf16.

`--transport` compares only the transports, side by side: our ZeroMQ server (`policy.server`) and an
openpi-style websocket + msgpack server (bench/transport_baseline.py), both serving an echo policy in
a separate process, with three-image requests at 240x320 and 480x640: round-trip p50 / p99 and the
client's CPU time per request (user + system of the bench process, which runs only the client).

Usage: python3 bench/bench_policy.py [--repeats N] [--threads N] [--gpu] [--transport [--requests N]]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from policy_demo_data import home_request, random_checkpoint


class EchoPolicy:
    """Answers at once with a fixed (60, 2, 8) chunk: isolates the transport."""

    def metadata(self) -> dict:
        return {"policy": "echo"}

    def infer(self, req: Any) -> Any:
        from policy.interface import PolicyResult

        return PolicyResult(chunk=np.zeros((60, 2, 8)), dt=1 / 30)


def timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def summary(name: str, ms: list[float]) -> None:
    print(f"{name:<46} median {statistics.median(ms):8.2f} ms   p90 {np.percentile(ms, 90):8.2f} ms   (n={len(ms)})")


def cpu_section(repeats: int) -> None:
    from policy.client import PolicyClient
    from policy.inference import A2WorldPolicy
    from policy.onnx_export import export_onnx
    from policy.onnx_runner import OnnxPolicy
    from policy.server import PolicyServer, ServerConfig

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = random_checkpoint(Path(tmp) / "ckpt")
        onnx = export_onnx(ckpt, Path(tmp) / "denoiser.onnx")
        request = home_request(size=(480, 640))
        torch_policy = A2WorldPolicy(ckpt, device="cpu")
        onnx_policy = OnnxPolicy(ckpt, onnx)
        t_torch = timed(lambda: torch_policy.infer(request), repeats)
        t_onnx = timed(lambda: onnx_policy.infer(request), repeats)
        samp_t = timed(lambda: torch_policy.sample(), repeats)
        samp_o = timed(lambda: onnx_policy.sample(), repeats)
        print(f"tiny config, {torch_policy.sampler.num_steps} steps ({torch_policy.sampler.num_steps + 1} denoiser "
              f"calls), 3 views 480x640 in, torch threads {torch.get_num_threads()}")
        summary("chunk latency, torch (full infer)", t_torch)
        summary("chunk latency, onnxruntime (full infer)", t_onnx)
        summary("sampler only, torch", samp_t)
        summary("sampler only, onnxruntime", samp_o)
        print(f"onnxruntime / torch sampler ratio: {statistics.median(samp_o) / statistics.median(samp_t):.2f}")

        server = PolicyServer(EchoPolicy(), ServerConfig(address="tcp://127.0.0.1:0"))
        server.start_background()
        with PolicyClient(server.address, timeout_s=5.0) as client:
            rt = timed(lambda: client.infer(request), repeats * 5)
            small = home_request(size=(240, 320))
            rt_small = timed(lambda: client.infer(small), repeats * 5)
        server.stop()
        summary("server round trip, 3 x 480x640 images (echo)", rt)
        summary("server round trip, 3 x 240x320 images (echo)", rt_small)


def _serve_in_child(kind: str, conn: Any, stop: Any) -> None:
    if kind == "zmq":
        from policy.server import PolicyServer, ServerConfig

        server = PolicyServer(EchoPolicy(), ServerConfig(address="tcp://127.0.0.1:0"))
        server.start_background()
        conn.send(server.address)
        stop.wait()
        server.stop()
    else:
        from transport_baseline import EchoPolicy as WebsocketEcho
        from transport_baseline import WebsocketServer

        ws = WebsocketServer(WebsocketEcho()).start()
        conn.send(f"ws://127.0.0.1:{ws.port}")
        stop.wait()
        ws.stop()


def transport_section(requests: int) -> list[dict[str, Any]]:
    """Round trip and client CPU of both transports at both sizes; prints a table and returns the rows."""
    import multiprocessing as mp
    import resource

    from transport_baseline import WebsocketClient

    from policy.client import PolicyClient

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    ctx = mp.get_context("spawn")
    rows = []
    for size in ((240, 320), (480, 640)):
        request = home_request(size=size)
        openpi_obs = {f"observation/images/{k}": v for k, v in request.images.items()}
        openpi_obs.update({"observation/state": request.state, "prompt": request.instruction})
        for kind in ("zmq", "openpi-ws"):
            parent, child = ctx.Pipe()
            stop = ctx.Event()
            proc = ctx.Process(target=_serve_in_child, args=("zmq" if kind == "zmq" else "ws", child, stop),
                               daemon=True)
            proc.start()
            address = parent.recv()
            if kind == "zmq":
                client: Any = PolicyClient(address, timeout_s=10.0)
                call = functools.partial(client.infer, request)
            else:
                client = WebsocketClient(address)
                call = functools.partial(client.infer, openpi_obs)
            timed(call, 10)  # warm up
            c0 = cpu_s()
            ms = timed(call, requests, warmup=0)
            cpu_ms = (cpu_s() - c0) / requests * 1e3
            client.close()
            stop.set()
            proc.join(10)
            row = {"transport": kind, "size": f"{size[0]}x{size[1]}", "p50_ms": float(np.percentile(ms, 50)),
                   "p99_ms": float(np.percentile(ms, 99)), "client_cpu_ms": cpu_ms, "n": requests}
            rows.append(row)
            print(f"{kind:<10} 3 x {row['size']:<8} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms  "
                  f"client CPU {cpu_ms:6.3f} ms/request  (n={requests})", flush=True)
    for size in ("240x320", "480x640"):
        ours, base = (next(r for r in rows if r["transport"] == t and r["size"] == size) for t in ("zmq", "openpi-ws"))
        print(f"{size}: zmq / openpi-ws  p50 {ours['p50_ms'] / base['p50_ms']:.2f}x  "
              f"p99 {ours['p99_ms'] / base['p99_ms']:.2f}x  "
              f"client CPU {ours['client_cpu_ms'] / base['client_cpu_ms']:.2f}x")
    return rows


def gpu_section(repeats: int) -> None:
    from policy.config import load_policy_config
    from policy.diffusion import JointCondition, JointDenoiser, sample_joint
    from policy.model import build_policy_net

    cfg = load_policy_config("full")
    dev = torch.device("cuda")
    net = build_policy_net(cfg, device=dev, dtype=torch.bfloat16).eval()
    p = cfg.policy
    V, T = len(p.cameras), p.latent_frames
    h, w = p.image_size[0] // 8, p.image_size[1] // 8
    mask = torch.zeros(1, V, T, device=dev)
    mask[:, :, 0] = 1
    ctx = torch.randn(1, cfg.text.max_tokens, 1024, device=dev)
    cond = JointCondition(torch.randn(1, 16, V * T, h, w, device=dev), mask.reshape(1, -1),
                          torch.tensor([p.view_ids], device=dev), ctx, torch.zeros_like(ctx),
                          torch.zeros(1, 16, device=dev), torch.zeros(1, 60, 14, device=dev),
                          torch.zeros(1, 60, device=dev))
    den = JointDenoiser(net, cfg.diffusion)
    from dataclasses import replace

    for steps in (5, 10):
        sampler = replace(cfg.sampler, num_steps=steps)

        def run(sampler=sampler):
            sample_joint(den, cond, torch.randn(1, 16, V * T, h, w, device=dev), torch.randn(1, 60, 14, device=dev),
                         sampler)
            torch.cuda.synchronize()

        summary(f"full size, 3 views 256x256, {steps} steps, bf16", timed(run, repeats))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    parser.add_argument("--gpu", action="store_true", help="also run the full-size GPU section")
    parser.add_argument("--transport", action="store_true",
                        help="only compare the transports (ours vs an openpi-style websocket server)")
    parser.add_argument("--requests", type=int, default=500, help="requests per transport and size (--transport)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.transport:
        transport_section(args.requests)
        return 0
    cpu_section(args.repeats)
    if args.gpu:
        if not torch.cuda.is_available():
            print("GPU section: not run (no CUDA device)")
        else:
            gpu_section(args.repeats)
    else:
        print("GPU section: not run (pass --gpu on a machine with a CUDA device)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
