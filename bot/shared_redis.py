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

# KEYS: in flight, rate window, warned. ARGV: lease value ("<owner>|<token>"), lease ms, rate
# window ms, owner. A lease of the same (non-empty) owner is taken over, rate window and all.
ADMIT = """
local running = redis.call('GET', KEYS[1])
local again = ARGV[4] ~= '' and running and string.sub(running, 1, #ARGV[4] + 1) == ARGV[4] .. '|'
if running and not again then return 1 end
if not again and redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
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

# The journal (bot/update_journal.py): a hash of key -> payload beside each key's lease, whose
# value is the holder's token, or "done" once settled.
# KEYS: the key, the journal. ARGV: token, lease ms, payload, the key's name in the journal.
HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
  return 1
end
return 0
"""
# KEYS: the held keys. ARGV: lease ms, then each key's token.
RENEW = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 0
"""
# KEYS: the key, the journal. ARGV: ttl ms, the key's name in the journal.
SETTLE = """
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
return 0
"""
# KEYS: the journal. ARGV: key prefix, token, lease ms. Keys are built here from the journal's
# names, so this is for one Redis server, not a cluster (as the bot's whole state is).
ORPHANS = """
local taken = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local name, payload = entries[i], entries[i + 1]
  local key = ARGV[1] .. name
  local value = redis.call('GET', key)
  if value == 'done' then
    redis.call('HDEL', KEYS[1], name)
  elseif not value then
    redis.call('SET', key, ARGV[2], 'PX', ARGV[3])
    table.insert(taken, name)
    table.insert(taken, payload)
  end
end
return taken
"""


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
        self._hold = self.redis.register_script(HOLD)
        self._renew = self.redis.register_script(RENEW)
        self._settle = self.redis.register_script(SETTLE)
        self._orphans = self.redis.register_script(ORPHANS)
        self.journal = prefix + "journal"

    def _user_keys(self, user_id: int) -> list[str]:
        return [f"{self.prefix}{part}:{user_id}" for part in ("in-flight", "rate", "warned")]

    async def admit(self, user_id: int, rate_s: float, owner: str = "") -> Admission:
        keys = self._user_keys(user_id)
        token = f"{owner}|{secrets.token_hex(8)}"
        rate_ms = _ms(rate_s) if rate_s > 0 else 0
        code = await self._admit(keys=keys, args=[token, _ms(self.lease_s), rate_ms, owner])
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

    async def hold(self, key: str, payload: str, token: str, lease_s: float) -> bool:
        keys = [self.prefix + key, self.journal]
        return bool(await self._hold(keys=keys, args=[token, _ms(lease_s), payload, key]))

    async def renew(self, held: dict[str, str], lease_s: float) -> None:
        if held:
            keys = [self.prefix + key for key in held]
            await self._renew(keys=keys, args=[_ms(lease_s), *held.values()])

    async def settle(self, key: str, ttl_s: float) -> None:
        await self._settle(keys=[self.prefix + key, self.journal], args=[_ms(ttl_s), key])

    async def orphans(self, token: str, lease_s: float) -> list[tuple[str, str]]:
        flat = await self._orphans(keys=[self.journal], args=[self.prefix, token, _ms(lease_s)])
        return list(zip(flat[::2], flat[1::2], strict=True))

    async def close(self) -> None:
        await self.redis.aclose()
