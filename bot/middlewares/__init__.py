from bot.middlewares.db import DbSessionMiddleware
from bot.middlewares.throttling import GenerationGuardMiddleware

__all__ = ["DbSessionMiddleware", "GenerationGuardMiddleware"]
