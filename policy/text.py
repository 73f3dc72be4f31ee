"""Pluggable instruction encoders producing the cross-attention context (B, M, crossattn_emb_channels).

- `ByteTextEncoder`: ours, for the small models trained here: UTF-8 bytes -> embeddings -> a small
  transformer encoder -> linear to the context width. Trained with the policy, saved in its checkpoint.
- `T5TextEncoder`: a T5 encoder loaded from a local directory (Hugging Face layout, `transformers`
  needed; never downloaded at run time), 1024-wide for the Cosmos cross-attention (T5-11B encoder),
  padded to `max_tokens` with zeros like Cosmos-Predict2 does.

Both cache the embedding of each instruction (`CachedContext`): a robot repeats the same instruction for a
whole episode, so the encoder runs once per instruction at inference. The dropped-instruction (null)
context for classifier-free guidance is all zeros.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

PAD = 0
VOCAB = 257  # bytes shifted by one, 0 = padding


def tokenize_bytes(texts: Sequence[str], max_tokens: int) -> torch.Tensor:
    """(B, max_tokens) long: UTF-8 bytes + 1, truncated, padded with 0."""
    out = torch.zeros(len(texts), max_tokens, dtype=torch.long)
    for i, text in enumerate(texts):
        data = list(text.strip().lower().encode("utf-8"))[:max_tokens]
        if data:
            out[i, : len(data)] = torch.tensor(data, dtype=torch.long) + 1
    return out


class ByteTextEncoder(nn.Module):
    """Small byte-level transformer encoder trained with the policy; `forward(tokens) -> (B, M, out_dim)`."""

    def __init__(self, width: int, layers: int, heads: int, max_tokens: int, out_dim: int) -> None:
        super().__init__()
        self.max_tokens = max_tokens
        self.embed = nn.Embedding(VOCAB, width, padding_idx=PAD)
        self.pos = nn.Parameter(torch.randn(max_tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        pad = tokens == PAD
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        x = self.encoder(x, src_key_padding_mask=pad & ~pad.all(dim=1, keepdim=True))
        out = self.proj(self.norm(x))
        return out * (~pad)[..., None].to(out.dtype)  # padding positions are zero, like Cosmos' T5 context

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        return self(tokenize_bytes(texts, self.max_tokens).to(self.proj.weight.device))


class T5TextEncoder:
    """T5 encoder from a local directory; `encode(texts) -> (B, max_tokens, d_model)` float32, zero padded."""

    def __init__(self, directory: str | Path, max_tokens: int, device: torch.device | str = "cpu") -> None:
        path = Path(directory)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text.t5_dir {path}: no config.json (expected a local T5 encoder directory; "
                                    "nothing is downloaded at run time)")
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as exc:
            raise ImportError("text.kind=t5 needs the `transformers` package (pip install transformers)") from exc
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = T5EncoderModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.max_tokens = max_tokens
        self.device = device

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(list(texts), return_tensors="pt", padding="max_length", truncation=True,
                               max_length=self.max_tokens)
        ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
        out = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return out * mask[..., None].to(out.dtype)


class CachedContext:
    """Per-instruction cache of context embeddings around any `encode(texts)` callable (inference only)."""

    def __init__(self, encoder: ByteTextEncoder | T5TextEncoder, capacity: int = 64) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @torch.no_grad()
    def get(self, text: str) -> torch.Tensor:
        """(1, M, Dc) embedding of one instruction, computed once."""
        hit = self._cache.get(text)
        if hit is None:
            hit = self.encoder.encode([text]).detach()
            self._cache[text] = hit
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(text)
        return hit

    def clear(self) -> None:
        self._cache.clear()
