"""onnxruntime runner for the exported denoiser step (`policy/onnx_export.py`).

`OnnxDenoiser` wraps an InferenceSession (CUDA provider first when onnxruntime-gpu offers it, else CPU);
`OnnxPolicy` is `A2WorldPolicy` with its network calls replaced by the session: image resizing, VAE and
text encoding, the committed prefix and the sampler loop are shared, so the two differ only by the
runtime of the denoiser. Agreement with torch: within 1e-4 absolute on the tiny config (fp32;
tests/test_policy_onnx.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from policy.inference import A2WorldPolicy
from policy.onnx_export import INPUTS


def providers() -> list[str]:
    """CUDA when onnxruntime-gpu provides it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxDenoiser:
    """`x0(**inputs) -> (x0v, x0a)` numpy float32 through onnxruntime."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers())
        self.input_names = [i.name for i in self.session.get_inputs()]
        missing = [n for n in self.input_names if n not in INPUTS]
        if missing:
            raise ValueError(f"{path}: unexpected ONNX inputs {missing} (expected a subset of {list(INPUTS)})")

    def x0(self, **inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {n: inputs[n] for n in self.input_names}
        x0v, x0a = self.session.run(None, feed)
        return x0v, x0a


class OnnxPolicy(A2WorldPolicy):
    """The policy with the denoiser step on onnxruntime (torch still encodes images and text)."""

    def __init__(self, checkpoint: str | Path, onnx_path: str | Path, threads: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("device", "cpu")
        super().__init__(checkpoint, **kwargs)
        self.onnx = OnnxDenoiser(onnx_path, threads)

    def _feed(self, i: int, context: torch.Tensor) -> dict[str, np.ndarray]:
        c = self.cond
        state = c.state if c.state is not None else torch.zeros(1, 16)
        tensors = {"xv": self.xv, "xa": self.xa, "sigma_v": self.sigma_v[i], "sigma_a": self.sigma_a[i],
                   "cond_latents": c.cond_latents, "cond_mask": c.cond_mask, "view_ids": c.view_ids,
                   "context": context, "state": state, "prefix": c.prefix, "prefix_mask": c.prefix_mask}
        return {k: v.detach().cpu().numpy() for k, v in tensors.items()}

    def _x0(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        cv, ca = self.onnx.x0(**self._feed(i, self.cond.context))
        if self.s_v != 1.0 or self.s_a != 1.0:
            uv, ua = self.onnx.x0(**self._feed(i, self.cond.null_context))
            cv, ca = uv + self.s_v * (cv - uv), ua + self.s_a * (ca - ua)
        return torch.from_numpy(cv), torch.from_numpy(ca)

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        meta["runtime"] = {"onnxruntime": self.onnx.session.get_providers()}
        return meta
