"""`a2world policy ...`: train, serve and export A2World-policy; generate CURVE keys for the server.

Handlers import torch, zmq and the model code lazily so `a2world --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from worldmodel.threads import add_threads_option

GROUP_HELP = "A2World-policy: train on recorded datasets, serve over ZeroMQ, export to ONNX"
GROUP_DESCRIPTION = """\
The joint video-action diffusion policy (docs/policy.md).

Typical flow:
  a2world policy train --data DATASET --out runs/policy            # tiny config, CPU is fine
  a2world policy serve runs/policy/checkpoint                       # tcp://127.0.0.1:5555
  a2world policy export-onnx runs/policy/checkpoint runs/policy/denoiser.onnx
  a2world policy keys keys/                                         # before serving on a network interface
"""

TRAIN_DESCRIPTION = """\
Train a policy on LeRobot v3.0 datasets (`a2world collect ... --out DIR` writes DIR/lerobot).
Trailing KEY=VALUE arguments are Hydra overrides of config/policy/<config>.yaml, e.g.
  train.steps=2000 train.batch_size=32 policy.cameras=[front] train.init_from=checkpoints/a2world-pretrained.pt
Writes OUT/checkpoint (EMA weights, what `serve` loads) and OUT/train_state.pt; running the same command
again resumes from OUT/train_state.pt (--no-resume starts over). The last `train.val_episodes` episodes
are held out and the held-out action error is printed at the end.

Examples:
  a2world policy train --data /tmp/demos/lerobot --out /tmp/policy train.steps=400
  a2world policy train --config full --nproc 8 --data /data/a --data /data/b --out runs/full
"""

SERVE_DESCRIPTION = """\
Serve a trained checkpoint over ZeroMQ (msgpack + raw numpy buffers, never pickle). Requests carry the
newest observation (images, (2, 8) state, instruction, committed prefix); replies carry the absolute
(T, 2, 8) command chunk. One inference at a time, the newest waiting request wins. The server binds to
loopback; another interface requires --curve-secret (and --authorized-keys to check clients), see
`a2world policy keys`. Stop with Ctrl-C.

Examples:
  a2world policy serve runs/policy/checkpoint
  a2world policy serve runs/policy/checkpoint --address tcp://0.0.0.0:5555 \\
      --curve-secret keys/server.key_secret --authorized-keys keys/clients
"""


def _cmd_train(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from policy.data import check_training_inputs
    from rig.config import ConfigError
    from rig.dataformats.lerobot_v3 import DatasetError

    try:  # config and data first: a typo must not cost the minutes of loading and encoding
        check_training_inputs(args.config, args.overrides, args.data)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tail = ["--config", args.config, "--out", args.out]
    for d in args.data:
        tail += ["--data", d]
    if args.no_resume:
        tail.append("--no-resume")
    if args.nproc > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            print("error: --nproc inside a torchrun job; drop --nproc", file=sys.stderr)
            return 2
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "policy.train", *tail, *args.overrides]
        return subprocess.call(cmd)
    from policy.train import main

    return main([*tail, *args.overrides])


def _cmd_serve(args: argparse.Namespace) -> int:
    from policy.checkpoint import PolicyCheckpointError
    from policy.server import PolicyServer, ServerConfig
    from rig.config import ConfigError
    from worldmodel.threads import configure_torch_threads

    try:
        configure_torch_threads(args.threads, source="--threads")
        if args.onnx:
            from policy.onnx_runner import OnnxPolicy

            policy = OnnxPolicy(args.checkpoint, args.onnx, num_steps=args.steps)
        else:
            from policy.inference import A2WorldPolicy

            policy = A2WorldPolicy(args.checkpoint, device=args.device, num_steps=args.steps,
                                   compile=args.compile)
    except (PolicyCheckpointError, ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server = PolicyServer(policy, ServerConfig(address=args.address, curve_secret_key_file=args.curve_secret,
                                                   authorized_keys_dir=args.authorized_keys,
                                                   allow_any_client=args.allow_any_client))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:
        server.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    meta = policy.metadata()
    print(f"serving {args.checkpoint} ({meta['config_name']}, model {meta['model_hash'][:12]}, "
          f"{meta['sampler']['num_steps']} steps, {meta['device']}) on {server.address}", flush=True)
    server.serve_forever()
    print(f"stopped: {server.served} served, {server.errors} errors, {server.superseded} superseded")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from policy.checkpoint import PolicyCheckpointError
    from policy.onnx_export import export_onnx
    from worldmodel.threads import configure_torch_threads

    try:
        configure_torch_threads(args.threads, source="--threads")
        path = export_onnx(args.checkpoint, args.out, opset=args.opset)
    except (PolicyCheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    if args.check:
        import numpy as np
        import torch

        from policy.checkpoint import load_policy
        from policy.onnx_export import INPUTS, DenoiserStep, example_inputs
        from policy.onnx_runner import OnnxDenoiser

        loaded = load_policy(args.checkpoint)
        inputs = example_inputs(loaded.config, loaded.config.text.max_tokens)
        with torch.no_grad():
            ref = DenoiserStep(loaded.net, loaded.config)(*inputs)
        got = OnnxDenoiser(path).x0(**{n: t.numpy() for n, t in zip(INPUTS, inputs)})
        err = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
        print(f"onnxruntime vs torch: max abs difference {err:.2e}")
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    from pathlib import Path

    import zmq.auth

    out = Path(args.directory)
    (out / "clients").mkdir(parents=True, exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(str(out), "server")
    client_public, client_secret = zmq.auth.create_certificates(str(out), args.client)
    Path(client_public).replace(out / "clients" / Path(client_public).name)
    print(f"server secret (for `serve --curve-secret`): {server_secret}")
    print(f"server public (give to clients):             {server_public}")
    print(f"client secret (for the client):              {client_secret}")
    print(f"authorized clients (for `serve --authorized-keys`): {out / 'clients'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("policy", help=GROUP_HELP, description=GROUP_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    group.set_defaults(func=lambda a: group.print_help() or 0)
    sub = group.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train a policy on LeRobot v3 datasets (Hydra overrides)",
                       description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="config/policy/<name>.yaml or a YAML path (default: tiny)")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="LeRobot v3.0 dataset root (repeat for several)")
    p.add_argument("--out", required=True, help="run directory (checkpoint, train_state.pt)")
    p.add_argument("--no-resume", action="store_true", help="ignore OUT/train_state.pt and start over")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs); > 1 relaunches under torchrun")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. train.steps=100")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("serve", help="serve a checkpoint over ZeroMQ (loopback unless CURVE keys are given)",
                       description=SERVE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint directory (OUT/checkpoint of `policy train`)")
    p.add_argument("--address", default="tcp://127.0.0.1:5555", help="ZeroMQ endpoint to bind")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the checkpoint's config)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile with CUDA graphs (GPU only)")
    p.add_argument("--onnx", default=None, metavar="FILE", help="run the denoiser with onnxruntime from FILE")
    p.add_argument("--curve-secret", default=None, metavar="FILE", help="server secret key (zmq certificate)")
    p.add_argument("--authorized-keys", default=None, metavar="DIR",
                   help="directory of allowed client public keys (*.key); required off loopback")
    p.add_argument("--allow-any-client", action="store_true",
                   help="CURVE without an allow-list: any client with the server's public key may connect (warns)")
    add_threads_option(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("export-onnx", help="export the denoiser step to ONNX",
                       description="Export one conditional denoiser step (network + preconditioning) of a "
                                   "checkpoint to ONNX at the checkpoint's shapes; `serve --onnx FILE` runs it.")
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("out", help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--check", action="store_true", help="compare onnxruntime with torch on random inputs")
    add_threads_option(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("keys", help="generate CURVE key pairs for the server and one client",
                       description="Write server.key / server.key_secret and CLIENT.key_secret into DIR and the "
                                   "client's public key into DIR/clients (pass it as --authorized-keys).")
    p.add_argument("directory", help="output directory")
    p.add_argument("--client", default="client", help="client key name (default: client)")
    p.set_defaults(func=_cmd_keys)


logging.getLogger(__name__).addHandler(logging.NullHandler())
