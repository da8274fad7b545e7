"""Measuring the jokes (the lab side: the bot never imports this package).

Two reports:

* docs/QUALITY.md, the jokes the way a reader sees them (`python -m generation.evaluation`):
  `reader` scores shown jokes (clean, copied, the judge's score, the GPT's fluency) and sums them
  up per method; `report` renders the page from `quality_template.md`. The jokes themselves come
  from the served path: `python -m generation --method M --json < words.txt`.
* docs/QUALITY-details.md, the form-only measures (`python -m generation.evaluation.details`, the
  command line): `pipeline` runs the stages, `bpc` scores held-out jokes against the n-gram
  `baselines`, `runs` generates through the service, `sweep` varies DiffuSeq's steps, `outputs`
  and `metrics` turn jokes into table rows, `corpus` reads the splits and picks the starting
  words, and `details_markdown` writes the page from the `details_*template.md` files.
"""
