"""Shared test fixtures; the tiny real models live in `tests/fixtures_models.py`."""

from tests.fixtures_models import tiny_gpt_dir, tiny_gpt_split

__all__ = ["tiny_gpt_dir", "tiny_gpt_split"]
