"""The judge: how likely people are to like a joke, for picking the best of N candidates.

Serving needs numpy (and torch only for the GPT's bits per character); training
(`python -m generation.training.train_judge`) needs scikit-learn. See models/judge/README.md.
"""

from generation.judge.model import Judge, JudgeScore, JudgeUnavailable

__all__ = ["Judge", "JudgeScore", "JudgeUnavailable"]
