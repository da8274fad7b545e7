"""`SharedState` in Redis (redis-py's asyncio client), for several bot replicas.

Each rule is one atomic Redis operation, so two replicas deciding at the same moment cannot both
win: admitting a request is a Lua script (in-flight check, rate window, lease), a handled update
is a SET NX with an expiry, a 🔁 cursor an INCR. Time comes from Redis itself (key expiry), so
replicas with skewed clocks still agree on a rate window.

Timeouts are short and redis-py's own retries are off: an unreachable Redis must fail fast, so
that `FallbackState` can answer from memory instead of keeping a user waiting.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.shared_state import (
    WARNED_TTL_S,
    Admission,
    SharedState,
    Verdict,
)

#: What an unreachable or failing Redis raises.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
TIMEOUT_S = 0.5

# KEYS: in flight, rate window, warned. ARGV: lease token, lease ms, rate window ms.
ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
redis.call('DEL', KEYS[3])
return 0
"""
# Ends a request only if its lease is still ours (not expired and taken by a newer request).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
VERDICTS = {0: Verdict.ADMITTED, 1: Verdict.IN_FLIGHT, 2: Verdict.TOO_FAST}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisState(SharedState):
    shared = True

    def __init__(
        self, url: str, *, prefix: str = "funny-and-tochka:", lease_s: float = 50.0
    ) -> None:
        """`lease_s`: how long an admitted request holds the user's one slot at most."""
        self.prefix = prefix
        self.lease_s = lease_s
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._admit = self.redis.register_script(ADMIT)
        self._release = self.redis.register_script(RELEASE)

    def _user_keys(self, user_id: int) -> list[str]:
        return [f"{self.prefix}{part}:{user_id}" for part in ("in-flight", "rate", "warned")]

    async def admit(self, user_id: int, rate_s: float) -> Admission:
        keys = self._user_keys(user_id)
        token = secrets.token_hex(8)
        rate_ms = _ms(rate_s) if rate_s > 0 else 0
        code = await self._admit(keys=keys, args=[token, _ms(self.lease_s), rate_ms])
        verdict = VERDICTS[int(code)]
        if verdict is not Verdict.ADMITTED:
            return Admission(verdict)

        async def release() -> None:
            await self._release(keys=keys[:1], args=[token])

        return Admission(verdict, release)

    async def warn_once(self, user_id: int) -> bool:
        key = self._user_keys(user_id)[2]
        return bool(await self.redis.set(key, "1", nx=True, px=_ms(WARNED_TTL_S)))

    async def claim(self, key: str, ttl_s: float) -> bool:
        return bool(await self.redis.set(self.prefix + key, "1", nx=True, px=_ms(ttl_s)))

    async def next_count(self, key: str, ttl_s: float) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.pexpire(self.prefix + key, _ms(ttl_s))
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self.redis.aclose()
