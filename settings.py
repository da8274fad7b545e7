"""All configuration of the bot, read once from the environment or `.env`.

The one place a default lives, so that a newcomer finds every knob here. The layers below never
read the environment behind the caller's back: `generation` takes a typed `GenerationConfig`
built from these fields (`Settings.generation()`), `storage` takes plain arguments. The fields
marked "tuning" are benchmark knobs (README, "Tuning"); a user running the bot needs none of them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from generation.config import (
    DiffuSeqSampler,
    GenerationConfig,
    GptDType,
    GptQuantize,
)
from generation.experiments import check_experiment
from generation.openai_api import parse_urls

ROOT = Path(__file__).resolve().parent
DEFAULT_GPT_MODEL = str(ROOT / "models" / "gpt")
DEFAULT_DIFFUSEQ_MODEL = str(ROOT / "models" / "diffuseq")
DEFAULT_CHECKS = str(ROOT / "models" / "checks")
DEFAULT_JUDGE = str(ROOT / "models" / "judge")
DEFAULT_CLASSIC = str(ROOT / "models" / "classic")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    bot_token: SecretStr | None = None
    # signs shared-joke links (bot/shared_jokes.py); unset: derived from BOT_TOKEN. Changing it
    # (or the token, while it is unset) invalidates every link given out before. Never logged.
    share_secret: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    # Storage
    database_url: str = "sqlite+aiosqlite:///data/jokes.db"  # or postgresql+asyncpg://...
    db_busy_timeout_ms: int = 5000
    # State shared by bot replicas (rate limits, handled updates, 🔁 cursors): bot/shared_state.py;
    # unset: kept in this process's memory
    redis_url: str | None = None

    # Generation: models
    gpt_model: str = DEFAULT_GPT_MODEL
    gpt_tokenizer: str | None = None
    gpt_dtype: GptDType = "float32"  # tuning
    gpt_prepend_bos: bool | None = None  # None: detect (our trained model: yes; hub original: no)
    gpt_quantize: GptQuantize = "int8"  # tuning: CPU kernels (generation/gpt/quantize.py)
    # decoding steps with fewer rows run on one torch thread (generation/gpt/decoding.py); 0: none
    # (the prompt pass and attention always do); unset: from the model's size
    gpt_one_thread_below_rows: int | None = Field(default=None, ge=0)
    diffuseq_model: str = DEFAULT_DIFFUSEQ_MODEL
    enable_diffuseq: bool = True
    device: str = "cpu"
    torch_threads: int = 0  # 0: let torch decide (all cores)
    # «📚 Из сборника»: real jokes from the collection, the human baseline (generation/classic/)
    enable_classic: bool = True
    classic_index: str = DEFAULT_CLASSIC
    # an A/B experiment: "method:folderA,folderB" serves the method from two model folders, each
    # user in one arm by a hash of their id (generation/experiments.py, bot/arms.py); unset: none
    experiment: str | None = None

    # Generation: decoding presets
    gpt_max_length: int = 20  # tokens in all, prompt included, as the original project had it
    gpt_max_new_tokens: int = 48  # for our own model, whose tokens are short; 0: use max_length
    gpt_num_beams: int = 6
    gpt_temperature: float = 0.6
    gpt_top_p: float = 0.9
    diffuseq_steps: int = 10
    diffuseq_sampler: DiffuSeqSampler = "renoise"
    diffuseq_mbr: int = 1

    # Generation: best of N (generation/selection.py): candidates drawn per joke, the reader's
    # checks (dictionary, copies) and the judge that ranks what passes
    best_of_n: bool = True
    gpt_candidates: int = Field(default=6, ge=1)
    gpt_sample_candidates: int = Field(default=6, ge=1)
    diffuseq_candidates: int = Field(default=4, ge=1)
    judge_weight: float = Field(default=0.85, ge=0.0, le=1.0)  # the judge vs the GPT's fluency
    checks_folder: str = DEFAULT_CHECKS
    judge_model: str = DEFAULT_JUDGE

    # Generation: service
    queue_depth: int = 256  # an upper bound; "busy" comes from the expected wait (admission.py)
    generation_timeout_s: float = 30.0
    batch_window_ms: float = 5.0
    max_batch_size: int = 32
    max_joke_chars: int = 1000  # post-processing cap (Telegram's limit is 4096)

    # Bot behaviour
    default_method: Literal["gpt", "gpt-sample", "diffuseq", "classic"] = "gpt"
    throttle_rate_s: float = 1.0
    polling_timeout_s: int = 10
    polling_backoff_min_s: float = 1.0  # first wait after a failed getUpdates, doubling up to max
    polling_backoff_max_s: float = 5.0
    shutdown_grace_s: float = 10.0
    max_prompt_chars: int = 64
    max_prompt_words: int = 5
    store_user_names: bool = False
    # inline mode: seconds an answer may be reused (Telegram's cache_time and the bot's own)
    inline_cache_s: int = Field(default=5, ge=0)

    # Webhook mode (`python -m bot --webhook`, README "Webhook mode"): Telegram POSTs updates to
    # WEBHOOK_URL + WEBHOOK_PATH; the bot listens on WEBHOOK_HOST:WEBHOOK_PORT (behind a proxy)
    webhook_url: str | None = None  # public base URL, e.g. https://bot.example.com
    webhook_path: str = "/telegram"
    webhook_secret: SecretStr | None = None  # unset: a new random one each start, never logged
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (local mode)

    # Generation over HTTP (README "Scaling out"): GENERATION_URL=http://gen1:8100,http://gen2:8100
    # sends generation to those servers (`python -m generation.server` replicas, or any
    # OpenAI-compatible completions server) instead of loading the models here; unset: in-process
    generation_url: str | None = None
    generation_server_host: str = "127.0.0.1"  # where `python -m generation.server` listens
    generation_server_port: int = Field(default=8100, ge=0, le=65535)

    def generation(self, **overrides: object) -> GenerationConfig:
        """The generation layer's view of these settings."""
        return GenerationConfig.from_settings(self, **overrides)

    @field_validator("telegram_api_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL of a Bot API server")
        return value.rstrip("/")

    @field_validator("experiment")
    @classmethod
    def _an_experiment(cls, value: str | None) -> str | None:
        return check_experiment(value)

    @field_validator("generation_url")
    @classmethod
    def _generation_urls(cls, value: str | None) -> str | None:
        return ",".join(parse_urls(value)) or None

    @field_validator("webhook_url", "webhook_path", "webhook_secret")
    @classmethod
    def _a_webhook_part(cls, value: object, info: ValidationInfo) -> object:
        return check_webhook_part(str(info.field_name), value)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = value.replace(";", ",").split(",")
            ids = [part.strip() for part in parts if part.strip()]
            if not all(part.lstrip("-").isdigit() for part in ids):
                raise ValueError("expected numeric Telegram user ids, separated by commas")
            return frozenset(int(part) for part in ids)
        if isinstance(value, int):
            return frozenset({value})
        return value

    def token(self) -> str | None:
        return self.bot_token.get_secret_value() if self.bot_token else None


def check_webhook_part(name: str, value: object) -> object:
    """WEBHOOK_URL: an http(s) base URL; WEBHOOK_PATH: starts with /; WEBHOOK_SECRET: what
    Telegram accepts as secret_token (1-256 of A-Z, a-z, 0-9, _ and -)."""
    if value is None:
        return None
    if name == "webhook_url":
        text = str(value).strip().rstrip("/")
        if not text.startswith(("http://", "https://")) or "?" in text or "#" in text:
            raise ValueError("expected the public http(s):// base URL Telegram will POST to")
        return text
    if name == "webhook_path":
        if not str(value).startswith("/") or "?" in str(value):
            raise ValueError("expected a path starting with /, e.g. /telegram")
        return value
    secret = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise ValueError("expected 1-256 characters out of A-Z, a-z, 0-9, _ and -")
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


def explain(error: ValidationError) -> str:
    """One line per wrong setting, named as the user sets it: a start-up error that reads like a
    stack trace sends people looking in the wrong place."""
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        value = item.get("input")
        secret = "SECRET" in name or "TOKEN" in name  # a wrong secret is still a secret
        shown = "" if isinstance(value, dict) or secret else f" (got {value!r})"
        problems.append(f"{name}: {item['msg']}{shown}")
    return "; ".join(problems)


__all__ = [
    "DEFAULT_CHECKS",
    "DEFAULT_CLASSIC",
    "DEFAULT_DIFFUSEQ_MODEL",
    "DEFAULT_GPT_MODEL",
    "DEFAULT_JUDGE",
    "ROOT",
    "Settings",
    "explain",
    "get_settings",
]
