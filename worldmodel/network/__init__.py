"""The A2World DiT in plain PyTorch: composable blocks (attention, RoPE, AdaLN-LoRA) and `A2WorldNet`."""

from worldmodel.network.a2world import A2WorldNet, build_net
from worldmodel.network.block import A2WorldBlock, BlockInputs

__all__ = ["A2WorldBlock", "A2WorldNet", "BlockInputs", "build_net"]
