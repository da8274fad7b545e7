"""Tables as SQLAlchemy 2.0 typed models; the migrations in `storage/migrations` create them.

Times are stored as naive UTC (SQLite has no time zones) and come back as aware UTC datetimes.
Telegram ids need 64 bits, hence BigInteger for user, chat and message ids. Our own row ids are
64-bit too (`RowId`): SQLite's INTEGER PRIMARY KEY already is, PostgreSQL gets BIGINT, so any id a
button can carry (up to 2**63) is a valid lookup on both, never a driver error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Fixed constraint names keep hand-written migrations and the models in step.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


#: A row id: INTEGER on SQLite (the 64-bit rowid alias that autoincrements), BIGINT elsewhere.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, so callers never compare naive with aware times."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    """A Telegram user who talked to the bot. No names unless the bot is told to keep them."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    method: Mapped[str | None] = mapped_column(String(32))
    # Filled only when the operator opts in (settings.store_user_names); NULL otherwise.
    username: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class StoredJoke(Base):
    """One generated joke as it was sent, with what produced it (method, model, params)."""

    __tablename__ = "jokes"

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # NULL until the message is sent; the joke is saved first so its id can go in the buttons.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    prompt: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(32), index=True)
    model: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]]
    latency_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Best of N: this joke's place in the judge's order (0 = shown first) among `candidates`
    # drawn, and the judge's score and version (NULL when no judge picked it).
    candidate_rank: Mapped[int | None] = mapped_column(Integer)
    candidates: Mapped[int | None] = mapped_column(Integer)
    judge_score: Mapped[float | None] = mapped_column(Float)
    judge_version: Mapped[str | None] = mapped_column(String(64))
    # The A/B experiment arm that served it (NULL: no experiment).
    arm: Mapped[str | None] = mapped_column(String(64))
    # Inline mode: the posted message's id (it has no chat message id), and whether the user
    # picked this one of the jokes offered (NULL for jokes sent in the bot's own chat).
    inline_message_id: Mapped[str | None] = mapped_column(String(255))
    inline_chosen: Mapped[bool | None] = mapped_column(Boolean)


class Vote(Base):
    """A user's current like (+1) or dislike (-1) of a joke; at most one per user and joke."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("joke_id", "user_id"),
        CheckConstraint("value IN (-1, 1)", name="value"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    joke_id: Mapped[int] = mapped_column(RowId, ForeignKey("jokes.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
