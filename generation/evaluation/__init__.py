"""Measuring the jokes the way a reader sees them (`python -m generation.evaluation`).

`reader` scores shown jokes (clean, copied, the judge's score, the GPT's fluency) and sums them
up per method; `report` renders docs/QUALITY.md from a template. The jokes themselves come from
the served path: `python -m generation --method M --json < words.txt`.
"""
