"""The GPT backend: a causal language model loaded with `from_pretrained`, decoded on the CPU.

`backend` serves requests (`loading` helps it load), `decoding` is the KV-cache loop with `beam`
search and the seeded `sampler`, `batch` and `ngrams` the rules every row follows, `quantize` the
int8 kernels, `scoring` the bits a text costs under the model.
"""

from generation.gpt.backend import GptBackend

__all__ = ["GptBackend"]
