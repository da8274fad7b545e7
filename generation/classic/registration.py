"""How the `classic` method joins the registry (`generation.registry.build_registry`).

Optional like DiffuSeq: without its index the bot starts and offers the other methods, and the
log says once why (a missing folder at registration, a broken one when it is loaded).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from generation.types import Backend

if TYPE_CHECKING:
    from generation.config import GenerationConfig
    from generation.registry import MethodRegistry

log = logging.getLogger(__name__)

CLASSIC = "classic"
DISPLAY_NAME = "📚 Из сборника"
BUILD_COMMAND = "python -m generation.training.classic_index --corpus ../shared/data/jokes"


def add_classic(registry: MethodRegistry, config: GenerationConfig) -> bool:
    """Register `classic` when its index folder exists; False (one warning) when it does not."""
    from generation.registry import named

    folder = Path(config.classic_index).expanduser()
    if not folder.is_dir():
        log.warning(
            "classic index %s not found; method %r not offered (build it: %s --out %s)",
            folder,
            CLASSIC,
            BUILD_COMMAND,
            folder,
        )
        return False

    def load() -> Backend:
        from generation.classic.backend import ClassicBackend

        return named("CLASSIC_INDEX", str(folder), ClassicBackend.from_folder)(folder)

    registry.add_backend(CLASSIC, load, optional=True)
    registry.add_method(CLASSIC, DISPLAY_NAME, CLASSIC, {}, deterministic=False, lookup=True)
    return True


__all__ = ["CLASSIC", "DISPLAY_NAME", "add_classic"]
