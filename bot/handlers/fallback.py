"""Whatever no feature claimed: a friendly word in private chats, silence elsewhere."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message

from bot import texts
from bot.replies import answer_query


async def unknown_command(message: Message) -> None:
    await message.answer(texts.UNKNOWN_COMMAND)


async def not_text(message: Message) -> None:
    """Stickers, photos, voice, locations… Service messages (pins, joins) are left alone."""
    if message.content_type in SERVICE_CONTENT:
        return
    await message.answer(texts.NOT_TEXT)


async def stale_button(query: CallbackQuery) -> None:
    """Callback data that no button of ours produced, or from an old version of the bot."""
    await answer_query(query, texts.STALE_BUTTON, alert=True)


SERVICE_CONTENT = {
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "successful_payment",
    "users_shared",
    "chat_shared",
    "write_access_allowed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
    "boost_added",
}


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(
        unknown_command, F.chat.type == ChatType.PRIVATE, F.text.startswith("/")
    )
    router.message.register(not_text, F.chat.type == ChatType.PRIVATE, ~F.text)
    router.callback_query.register(stale_button)
    return router
