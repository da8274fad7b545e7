"""A reader's checks for generated jokes: is the Russian broken, is the joke a training joke?

``JokeChecker.load("models/checks")`` reads the shipped files (built by
``python -m generation.training.checks_index``); ``check(text, prompt, ended=...)`` returns a
`Verdict`.
"""

from generation.checks.copies import CopyIndex
from generation.checks.verdict import JokeChecker, Verdict
from generation.checks.words import Lexicon

__all__ = ["CopyIndex", "JokeChecker", "Lexicon", "Verdict"]
