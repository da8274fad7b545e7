"""Shared test fixtures; the tiny real models live in `tests/fixtures_models.py`."""

from tests.fixtures_models import one_torch_thread, tiny_gpt_dir, tiny_gpt_split

__all__ = ["one_torch_thread", "tiny_gpt_dir", "tiny_gpt_split"]
