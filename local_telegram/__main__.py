"""`python -m local_telegram`: the local Bot API server alone; point a bot at the printed URL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from local_telegram.server import DEFAULT_TOKEN, LocalBotApi


async def serve(host: str, port: int, token: str) -> None:
    async with LocalBotApi(token, host=host, port=port) as api:
        print(f"Bot API: {api.url}  (TelegramAPIServer.from_base({api.url!r}))", flush=True)
        print(f"Token:   {api.token}", flush=True)
        print(f"Chat:    {api.page_url}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 = any free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
