"""Shared test fixtures; the tiny real models live in `tests/fixtures_models.py`, the local Bot API
server fixture in `tests/bot_harness.py`."""

from tests.bot_harness import api
from tests.fixtures_models import one_torch_thread, tiny_gpt_dir, tiny_gpt_split

__all__ = ["api", "one_torch_thread", "tiny_gpt_dir", "tiny_gpt_split"]
