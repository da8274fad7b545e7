"""DiffuSeq (v1 partial noising + v2 soft absorbing state and few-step sampling) for jokes."""

from generation.diffuseq.backend import DiffuSeqBackend, DiffuSeqSample, mbr_select
from generation.diffuseq.config import DiffuSeqConfig
from generation.diffuseq.data import first_word, starts_with_prompt

__all__ = [
    "DiffuSeqBackend",
    "DiffuSeqConfig",
    "DiffuSeqSample",
    "first_word",
    "mbr_select",
    "starts_with_prompt",
]
