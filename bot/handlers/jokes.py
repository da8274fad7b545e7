"""Everything that asks for a joke: a word in a private chat, /joke, a mention in a group, 🔁."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType, MessageEntityType
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage, Message
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.callbacks import MoreCb, RetryCb
from bot.joke_teller import JokeTeller
from bot.replies import answer_query
from bot.validation import check_prompt
from settings import Settings

GROUPS = {ChatType.GROUP, ChatType.SUPERGROUP}
GENERATION = {"generation": True}


async def _ask(
    message: Message,
    raw: str | None,
    *,
    session: AsyncSession,
    teller: JokeTeller,
    settings: Settings,
    bot: Bot,
) -> None:
    assert message.from_user is not None
    check = check_prompt(
        raw, max_chars=settings.max_prompt_chars, max_words=settings.max_prompt_words
    )
    if check.prompt is None:
        await message.reply(check.error or texts.EMPTY_TEXT)
        return
    method = await teller.user_method(session, message.from_user.id)
    await session.close()  # generation can take a while: hold no connection meanwhile
    await teller.tell(
        bot,
        chat_id=message.chat.id,
        user_id=message.from_user.id,
        prompt=check.prompt,
        method=method,
        reply_to=message.message_id if message.chat.type in GROUPS else None,
    )


async def joke_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    teller: JokeTeller,
    settings: Settings,
    bot: Bot,
) -> None:
    if not command.args or not command.args.strip():
        await message.reply(texts.JOKE_USAGE)
        return
    await _ask(message, command.args, session=session, teller=teller, settings=settings, bot=bot)


async def private_text(
    message: Message, session: AsyncSession, teller: JokeTeller, settings: Settings, bot: Bot
) -> None:
    await _ask(message, message.text, session=session, teller=teller, settings=settings, bot=bot)


async def _mention_text(message: Message, bot: Bot) -> str | None:
    """The text of a group message with the bot's @mention cut out, or None if not mentioned."""
    if not message.text or not message.entities:
        return None
    me = await bot.me()
    if not me.username:
        return None
    handle = f"@{me.username}".lower()
    for entity in message.entities:
        if entity.type != MessageEntityType.MENTION:
            continue
        mention = entity.extract_from(message.text)
        if mention.lower() == handle:
            return message.text.replace(mention, " ")
    return None


async def group_mention(
    message: Message, session: AsyncSession, teller: JokeTeller, settings: Settings, bot: Bot
) -> None:
    text = await _mention_text(message, bot)
    if text is None:
        return  # ordinary group chatter: not for us
    await _ask(message, text, session=session, teller=teller, settings=settings, bot=bot)


async def more(
    query: CallbackQuery,
    callback_data: MoreCb,
    message: MaybeInaccessibleMessage,
    session: AsyncSession,
    teller: JokeTeller,
    bot: Bot,
) -> None:
    joke = await storage.get_joke(session, callback_data.joke_id)
    if joke is None or joke.chat_id != message.chat.id:
        await answer_query(query, texts.NOT_FOUND, alert=True)
        return
    await answer_query(query)
    prompt, method = joke.prompt, joke.method
    await session.close()
    await teller.tell(
        bot,
        chat_id=message.chat.id,
        user_id=query.from_user.id,
        prompt=prompt,
        method=method,
        another=True,
    )


async def retry(
    query: CallbackQuery,
    callback_data: RetryCb,
    message: MaybeInaccessibleMessage,
    teller: JokeTeller,
    bot: Bot,
) -> None:
    remembered = teller.retry_tokens.get(callback_data.token)
    if remembered is None:
        await answer_query(query, texts.STALE_BUTTON, alert=True)
        return
    await answer_query(query)
    prompt, method = remembered
    await teller.tell(
        bot, chat_id=message.chat.id, user_id=query.from_user.id, prompt=prompt, method=method
    )


def build_router() -> Router:
    router = Router(name="jokes")
    router.message.register(joke_command, Command("joke"), F.from_user, flags=GENERATION)
    router.message.register(
        private_text,
        F.chat.type == ChatType.PRIVATE,
        F.text,
        ~F.text.startswith("/"),
        F.from_user,
        flags=GENERATION,
    )
    router.message.register(
        group_mention, F.chat.type.in_(GROUPS), F.text, F.from_user, flags=GENERATION
    )
    router.callback_query.register(
        more, MoreCb.filter(), F.message.as_("message"), flags=GENERATION
    )
    router.callback_query.register(
        retry, RetryCb.filter(), F.message.as_("message"), flags=GENERATION
    )
    return router
