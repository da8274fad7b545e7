"""The GPT backend: a causal language model loaded with `from_pretrained`, decoded on the CPU.

`backend` serves requests, `decoding` is the KV-cache loop, `quantize` the int8 kernels.
"""

from generation.gpt.backend import GptBackend

__all__ = ["GptBackend"]
