"""`classic`: real jokes from the openly licensed collection, a human baseline for the models.

Serving side only: `ClassicIndex` (the shipped index in `models/classic/`, looked up by lemmas)
and `ClassicBackend` (the registry's `LookupBackend`). The index is built by
`python -m generation.training.classic_index`.
"""

from generation.classic.backend import ClassicBackend, Pick, choose
from generation.classic.index import ClassicIndex, Found

__all__ = ["ClassicBackend", "ClassicIndex", "Found", "Pick", "choose"]
