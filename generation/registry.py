"""Named generation methods: which backend, which decoding preset, what the picker shows.

A method is a (backend, preset) pair. Backends are heavy, so they are registered as loaders and
built at most once, on first use or in `load_all()` (the service calls it in its worker thread at
start-up); methods that name the same backend share it (`gpt` and `gpt-sample` run on one
`GptBackend`). An optional backend (DiffuSeq) that cannot be imported or loaded takes its methods
out of the list with a logged warning instead of failing the bot.

`build_registry(config)` builds the project's standard methods from a `GenerationConfig`
(`Settings.generation()`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from generation.config import GenerationConfig
from generation.types import Backend, GenerationError, MethodInfo, UnknownMethod

if TYPE_CHECKING:
    from generation.experiments import ExperimentArms

log = logging.getLogger(__name__)

BackendLoader = Callable[[], Backend]

GPT = "gpt"
GPT_SAMPLE = "gpt-sample"
DIFFUSEQ = "diffuseq"


@dataclass(frozen=True, slots=True)
class Method:
    """A registered method. `params` is the exact decoding preset handed to the backend.

    deterministic: the backend reads seeds as variant indices (beam search), so the service gives
    a request's rows 0, 1, 2, ... instead of random seeds.
    candidates: N of best of N, the rows one request draws when the selector is on.
    redraw_params: the preset of the one extra draw when nothing in the first was fit to show;
    None: the same preset (new seeds; a beam search twice as wide).
    version_of: this is another version of that listed method (an experiment's arm,
    generation/experiments.py): served on request, never listed in the picker.
    lookup: the backend is a `LookupBackend` (stored jokes): the service calls it directly.
    """

    name: str
    display_name: str
    backend_key: str
    params: Mapping[str, Any]
    deterministic: bool
    candidates: int = 1
    redraw_params: Mapping[str, Any] | None = None
    version_of: str | None = None
    lookup: bool = False

    def info(self) -> MethodInfo:
        return MethodInfo(name=self.name, display_name=self.display_name, params=dict(self.params))


class MethodRegistry:
    """Methods in registration order (the picker's order), backends loaded lazily, once."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}
        self._loaders: dict[str, BackendLoader] = {}
        self._optional: set[str] = set()
        self._backends: dict[str, Backend] = {}
        self._failed: dict[str, str] = {}
        self.experiment: ExperimentArms | None = None  # set by generation.experiments.add_arms
        # Two locks: `_lock` guards the tables for a moment only, so the event loop can list
        # methods while `_load_lock` is held for the seconds a model takes to load.
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    # -- registration ----------------------------------------------------------------------------

    def add_backend(
        self, key: str, backend: Backend | BackendLoader, *, optional: bool = False
    ) -> None:
        """Register a backend instance or a zero-argument loader under `key`.

        optional: if loading fails, drop the methods that use it (warning) instead of raising.
        """
        with self._lock:
            if key in self._loaders or key in self._backends:
                raise ValueError(f"backend {key!r} is already registered")
            if callable(backend) and not hasattr(backend, "generate"):
                self._loaders[key] = backend
            else:
                self._backends[key] = backend  # type: ignore[assignment]
            if optional:
                self._optional.add(key)

    def add_method(
        self,
        name: str,
        display_name: str,
        backend_key: str,
        params: Mapping[str, Any],
        *,
        deterministic: bool | None = None,
        candidates: int = 1,
        redraw_params: Mapping[str, Any] | None = None,
        version_of: str | None = None,
        lookup: bool = False,
    ) -> Method:
        """Register a method on a registered backend; `deterministic` defaults to not do_sample."""
        if candidates < 1:
            raise ValueError(f"method {name!r}: candidates must be at least 1")
        with self._lock:
            if name in self._methods:
                raise ValueError(f"method {name!r} is already registered")
            if backend_key not in self._loaders and backend_key not in self._backends:
                raise ValueError(f"method {name!r} names an unknown backend {backend_key!r}")
            if deterministic is None:
                deterministic = params.get("do_sample", True) is False
            method = Method(
                name=name,
                display_name=display_name,
                backend_key=backend_key,
                params=MappingProxyType(dict(params)),
                deterministic=deterministic,
                candidates=candidates,
                redraw_params=(
                    None if redraw_params is None else MappingProxyType(dict(redraw_params))
                ),
                version_of=version_of,
                lookup=lookup,
            )
            self._methods[name] = method
            return method

    # -- lookup ----------------------------------------------------------------------------------

    def methods(self) -> list[MethodInfo]:
        """Usable methods, in registration order (methods whose backend failed are left out, and
        the unlisted versions of an experiment)."""
        with self._lock:
            usable = [m for m in self._methods.values() if m.backend_key not in self._failed]
        return [m.info() for m in usable if m.version_of is None]

    def names(self) -> list[str]:
        return [info.name for info in self.methods()]

    def method(self, name: str) -> Method:
        with self._lock:
            method = self._methods.get(name)
            usable = method is not None and method.backend_key not in self._failed
        if method is None or not usable:
            raise UnknownMethod(f"unknown generation method {name!r}; known: {self.names()}")
        return method

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def backend(self, name: str) -> Backend:
        """The backend of method `name`, loading it on first use (thread-safe, at most once)."""
        return self._load(self.method(name).backend_key)

    def is_loaded(self, backend_key: str) -> bool:
        return backend_key in self._backends

    def is_optional(self, name: str) -> bool:
        """Whether method `name` runs on an optional backend (the bot works without it)."""
        return self.method(name).backend_key in self._optional

    def startup_order(self, first: str) -> tuple[list[str], list[str]]:
        """(methods to load before serving, methods to load right after) for a bot whose users
        start on method `first`: the default method and every required one come first; the
        optional rest need not delay the first joke."""
        names = self.names()
        now = [n for n in names if n == first or not self.is_optional(n)]
        later = [n for n in names if n not in now]
        with self._lock:  # an experiment's versions load with the method they are versions of
            arms = [m for m in self._methods.values() if m.version_of in names]
        for arm in arms:
            (now if arm.version_of in now else later).append(arm.name)
        return now, later

    def load_all(self, methods: Collection[str] | None = None) -> dict[str, Backend]:
        """Load the backends of `methods` (default: all); optional ones that fail are dropped.

        Returns {backend key: backend} for what loaded. Raises GenerationError if a required
        backend cannot be loaded, UnknownMethod for an unknown name.
        """
        with self._lock:
            if methods is None:
                wanted = list(self._methods.values())
            else:
                wanted = [self._methods.get(name) for name in methods]
            if None in wanted:
                raise UnknownMethod(f"unknown methods in {sorted(methods or [])}")
            keys = list(dict.fromkeys(m.backend_key for m in wanted if m is not None))
        loaded: dict[str, Backend] = {}
        for key in keys:
            try:
                loaded[key] = self._load(key)
            except GenerationError:
                if key not in self._optional:
                    raise
        return loaded

    def _load(self, key: str) -> Backend:
        with self._load_lock:
            with self._lock:
                if key in self._backends:
                    return self._backends[key]
                if key in self._failed:
                    raise GenerationError(f"backend {key!r} failed to load: {self._failed[key]}")
                loader = self._loaders[key]
            try:
                backend = loader()
            except Exception as error:
                expected = isinstance(error, GenerationError)
                reason = str(error) if expected else f"{type(error).__name__}: {error}"
                if key in self._optional:
                    with self._lock:
                        self._failed[key] = reason
                        dropped = [m.name for m in self._methods.values() if m.backend_key == key]
                    log.warning("backend %r unavailable, %s disabled: %s", key, dropped, reason)
                raise GenerationError(f"cannot load backend {key!r}: {reason}") from error
            with self._lock:
                self._backends[key] = backend
            return backend


def gpt_length_params(config: GenerationConfig) -> dict[str, int]:
    """`max_new_tokens` when set (> 0), else the original's `max_length` (tokens in all).

    Our model's tokens are short and it ends every joke with <|endoftext|>, so a generous
    new-token budget lets it reach its own end instead of being cut mid-sentence; the original
    model's 20-token `max_length` stays available with GPT_MAX_NEW_TOKENS=0.
    """
    if config.gpt_max_new_tokens and config.gpt_max_new_tokens > 0:
        return {"max_new_tokens": int(config.gpt_max_new_tokens)}
    return {"max_length": int(config.gpt_max_length)}


def gpt_presets(config: GenerationConfig) -> dict[str, dict[str, Any]]:
    length = gpt_length_params(config)
    return {
        GPT: {
            "do_sample": False,
            "num_beams": int(config.gpt_num_beams),
            "no_repeat_ngram_size": 2,
            # stop once num_beams jokes are finished: the candidates are as good by the reader's
            # checks and a fifth of the steps is saved (docs/BENCHMARKS.md, "Best of N")
            "early_stopping": True,
            **length,
        },
        GPT_SAMPLE: {
            "do_sample": True,
            "temperature": float(config.gpt_temperature),
            "top_p": float(config.gpt_top_p),
            "top_k": 0,
            "no_repeat_ngram_size": 2,
            **length,
        },
    }


def diffuseq_preset(config: GenerationConfig) -> dict[str, Any]:
    return {
        "steps": int(config.diffuseq_steps),
        "sampler": str(config.diffuseq_sampler),
        "mbr": int(config.diffuseq_mbr),
    }


def named(setting: str, value: str, load: Callable[..., Backend]) -> Callable[..., Backend]:
    """`load`, whose errors name the setting that chose what failed to load: the person who
    reads "Cannot start" then knows what to change."""

    def call(*args: Any, **kwargs: Any) -> Backend:
        try:
            return load(*args, **kwargs)
        except Exception as error:
            raise GenerationError(f"{setting}={value}: {type(error).__name__}: {error}") from error

    return call


def _gpt_loader(config: GenerationConfig, setting: tuple[str, str] | None = None) -> BackendLoader:
    """`setting`: (name, value) errors name; default GPT_MODEL (an experiment names its own)."""
    name, value = setting or ("GPT_MODEL", config.gpt_model)

    def load() -> Backend:
        from generation.gpt.backend import GptBackend

        return named(name, value, GptBackend.from_pretrained)(
            config.gpt_model,
            tokenizer=config.gpt_tokenizer or None,
            device=config.device,
            dtype=config.gpt_dtype,
            threads=config.torch_threads or None,
            prepend_bos=config.gpt_prepend_bos,
            quantize=config.gpt_quantize,
            one_thread_below_rows=config.gpt_one_thread_below_rows,
        )

    return load


def _diffuseq_loader(
    config: GenerationConfig, setting: tuple[str, str] | None = None
) -> BackendLoader:
    name, value = setting or ("DIFFUSEQ_MODEL", config.diffuseq_model)

    def load() -> Backend:
        from generation.diffuseq import DiffuSeqBackend

        threads = config.torch_threads or None
        return named(name, value, DiffuSeqBackend.from_pretrained)(
            config.diffuseq_model, device=config.device, threads=threads
        )

    return load


def build_registry(config: GenerationConfig | None = None, /, **overrides: Any) -> MethodRegistry:
    """The project's methods: `gpt`, `gpt-sample`, `diffuseq` and `classic` when on and present.

    `config`: default `GenerationConfig.defaults()`; keyword overrides win. Nothing is loaded here.
    """
    cfg = (config or GenerationConfig.defaults()).but(**overrides)
    registry = MethodRegistry()
    registry.add_backend(GPT, _gpt_loader(cfg))
    presets = gpt_presets(cfg)
    # Beam search finds the likeliest jokes, and in our small model's case those are often whole
    # training jokes; when every beam is one, a second, wider beam search mostly finds copies
    # again, while sampling writes new jokes (docs/QUALITY.md).
    registry.add_method(
        GPT,
        "GPT",
        GPT,
        presets[GPT],
        candidates=cfg.gpt_candidates,
        redraw_params=presets[GPT_SAMPLE],
    )
    registry.add_method(
        GPT_SAMPLE,
        "GPT (sampling)",
        GPT,
        presets[GPT_SAMPLE],
        candidates=cfg.gpt_sample_candidates,
    )
    if cfg.enable_diffuseq:
        if Path(cfg.diffuseq_model).expanduser().exists():
            registry.add_backend(DIFFUSEQ, _diffuseq_loader(cfg), optional=True)
            registry.add_method(
                DIFFUSEQ,
                "DiffuSeq",
                DIFFUSEQ,
                diffuseq_preset(cfg),
                deterministic=False,
                candidates=cfg.diffuseq_candidates,
            )
        else:
            log.info("DiffuSeq model folder %s not found; method not offered", cfg.diffuseq_model)
    if cfg.enable_classic:
        from generation.classic.registration import add_classic  # it imports this module

        add_classic(registry, cfg)
    if cfg.experiment:
        from generation.experiments import add_arms, parse_experiment  # it imports this module

        add_arms(registry, parse_experiment(cfg.experiment), cfg)
    return registry


__all__ = [
    "DIFFUSEQ",
    "GPT",
    "GPT_SAMPLE",
    "BackendLoader",
    "Method",
    "MethodRegistry",
    "build_registry",
    "diffuseq_preset",
    "gpt_length_params",
    "gpt_presets",
]
