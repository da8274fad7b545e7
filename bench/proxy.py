"""A small round-robin reverse proxy: what nginx (deploy/nginx.conf) does in front of the bot
replicas, for `bench.scale`, where the local Bot API server POSTs webhooks to one URL.

Each request goes to the next upstream in turn. On a connection error, a timeout, or a 502/503
answer (a replica that is starting or stopping answers 503), the same request is tried on the
next upstream, as nginx's `proxy_next_upstream error timeout http_502 http_503` does; when every
upstream failed, the last failure is passed on (502 when none answered), and Telegram sends the
update again later.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import aiohttp
from aiohttp import web

RETRY_STATUSES = frozenset({502, 503})
#: Headers a proxy must not pass on (hop-by-hop, or recomputed by aiohttp).
SKIP_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}
)


class RoundRobinProxy:
    """Listens on `host:port` (0: a free port; `url` after `start()`) and forwards every request
    to `upstreams` (base URLs) in turn; `counts` tallies what happened, for the report."""

    def __init__(
        self,
        upstreams: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_s: float = 5.0,
    ) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = [u.rstrip("/") for u in upstreams]
        self.host, self.port = host, port
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.counts: Counter[str] = Counter()
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> RoundRobinProxy:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_HEADERS}
        first = next(self._turn)
        last: web.Response | None = None
        for step in range(len(self.upstreams)):
            upstream = self.upstreams[(first + step) % len(self.upstreams)]
            if step:
                self.counts["tried the next upstream"] += 1
            try:
                async with self._http.request(
                    request.method,
                    upstream + request.rel_url.path_qs,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                ) as answer:
                    content = await answer.read()
                    response = web.Response(
                        status=answer.status,
                        body=content,
                        headers={
                            k: v
                            for k, v in answer.headers.items()
                            if k.lower() not in SKIP_HEADERS
                        },
                    )
            except (aiohttp.ClientError, TimeoutError):
                self.counts["connection error or timeout"] += 1
                continue
            if answer.status in RETRY_STATUSES:
                self.counts[f"answered {answer.status}"] += 1
                last = response
                continue
            self.counts["forwarded"] += 1
            return response
        self.counts["every upstream failed"] += 1
        return last if last is not None else web.Response(status=502, text="no upstream answered")
