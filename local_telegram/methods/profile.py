"""The bot's profile: getMe, the command menu (set/get/deleteMyCommands), close and logOut."""

from __future__ import annotations

import json
from typing import Any

from local_telegram.params import Params, bad_request
from local_telegram.state import TelegramState

MAX_COMMANDS = 100


def commands_key(scope: dict[str, Any] | None, language_code: str) -> str:
    """Where a command list is kept: one list per (scope, language), as on Telegram."""
    return json.dumps(
        [scope or {"type": "default"}, language_code], sort_keys=True, ensure_ascii=False
    )


def _commands_key(params: Params) -> str:
    scope = params.json("scope", "can't parse BotCommandScope JSON object") or None
    if scope is not None and not isinstance(scope, dict):
        raise bad_request("can't parse BotCommandScope JSON object")
    return commands_key(scope, params.str("language_code") or "")


def _clean_command(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise bad_request("can't parse BotCommand JSON object")
    command = str(item.get("command", "")).removeprefix("/")
    description = str(item.get("description", "")).strip()
    if not (1 <= len(command) <= 32) or not all(
        c.isascii() and (c.isalnum() or c == "_") for c in command
    ):
        raise bad_request("BOT_COMMAND_INVALID")
    if not 1 <= len(description) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return {"command": command.lower(), "description": description}


async def get_me(state: TelegramState, params: Params) -> dict[str, Any]:
    return {
        **state.bot_user,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def set_my_commands(state: TelegramState, params: Params) -> bool:
    commands = params.json("commands", "can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > MAX_COMMANDS:
        raise bad_request("too many commands specified")
    cleaned = [_clean_command(item) for item in commands]
    state.commands[_commands_key(params)] = cleaned
    state.bump()
    return True


async def get_my_commands(state: TelegramState, params: Params) -> list[dict[str, Any]]:
    return list(state.commands.get(_commands_key(params), []))


async def delete_my_commands(state: TelegramState, params: Params) -> bool:
    state.commands.pop(_commands_key(params), None)
    state.bump()
    return True


async def accept(state: TelegramState, params: Params) -> bool:
    """close and logOut: nothing to do here, and Telegram answers True."""
    return True
