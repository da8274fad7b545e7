"""The bot's side of «📚 Из сборника» (the `classic` method, generation/classic).

Three things the generation layer cannot do on its own:
* remember what a user has been shown: it never reads the database, so the bot asks storage for
  the collection ids of the classic jokes sent to that user and passes them in the request, and
  the lookup skips them while others match (🔁 Ещё thus gives another joke on the same word);
* say "nothing in the collection" as an answer, not as a failure: no apology and no 🔁 Ещё
  раз (it would find nothing again), but a way on: let a model write one, or pick another method;
* mark a real joke as real under its text, so nobody takes it for the model's work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from bot import texts
from bot.callbacks import PickerCb, RetryCb
from generation.classic.registration import CLASSIC
from generation.registry import MethodRegistry
from generation.types import Joke, UnknownMethod

if TYPE_CHECKING:
    from bot.joke_teller import RetryTokens

log = logging.getLogger(__name__)


def shown_text(joke: Joke) -> str:
    """The message text of a joke: a classic one says where it comes from."""
    return f"{joke.text}\n\n{texts.CLASSIC_LABEL}" if joke.method == CLASSIC else joke.text


class ClassicShelf:
    """What a classic lookup needs from the bot: the user's history, and the "none" answer."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: MethodRegistry,
        default_method: str,
        retry_tokens: RetryTokens,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.default_method = default_method
        self.retry_tokens = retry_tokens

    async def shown(self, user_id: int, method: str) -> tuple[str, ...]:
        """The classic jokes `user_id` has seen, least recently first; () for other methods.

        A database that cannot answer costs a possible repeat, never the joke itself.
        """
        if method != CLASSIC:
            return ()
        try:
            async with self.sessionmaker() as session:
                return tuple(await storage.shown_classic_ids(session, user_id))
        except storage.StorageError as error:
            log.warning("could not read the classic jokes user %d has seen: %s", user_id, error)
            return ()

    def writer(self) -> str | None:
        """The method to offer when the collection has nothing: the default, if it writes."""
        names = [info.name for info in self.registry.methods()]
        for name in [self.default_method, *names]:
            try:
                if name in names and not self.registry.method(name).lookup:
                    return name
            except UnknownMethod:  # dropped between the two calls
                continue
        return None

    def nothing_keyboard(self, prompt: str) -> InlineKeyboardMarkup:
        """✍️ the same word by a model (the 🔁 Ещё раз button's handler does it), ⚙️ the picker."""
        builder = InlineKeyboardBuilder()
        writer = self.writer()
        if writer is not None:
            name = next(i.display_name for i in self.registry.methods() if i.name == writer)
            token = self.retry_tokens.put(prompt, writer)
            builder.button(
                text=texts.CLASSIC_WRITE.format(method=name), callback_data=RetryCb(token=token)
            )
        builder.button(text=texts.CLASSIC_PICK, callback_data=PickerCb())
        builder.adjust(1)
        return builder.as_markup()

    async def say_nothing(self, bot: Bot, chat_id: int, prompt: str, reply_to: int | None) -> None:
        """Tell the user the collection has no joke on `prompt`, with the ways on."""
        await bot.send_message(
            chat_id,
            texts.CLASSIC_NOTHING.format(prompt=prompt),
            reply_markup=self.nothing_keyboard(prompt),
            reply_to_message_id=reply_to,
        )


__all__ = ["ClassicShelf", "shown_text"]
