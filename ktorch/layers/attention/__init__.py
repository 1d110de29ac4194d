from ktorch.layers.attention.attention import Attention
from ktorch.layers.attention.multi_head_attention import MultiHeadAttention

__all__ = ["Attention", "MultiHeadAttention"]
