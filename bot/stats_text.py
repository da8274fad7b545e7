"""The lines of /stats below each method: its model versions and, while an experiment runs, how
its two arms compare (storage/experiments.py has the numbers and the verdict)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.arms import Arms
from storage.experiments import VersionStats, arm_stats, compare_arms


def ratio_text(likes: int, votes: int) -> str:
    """«60% (95%: 23–88%)», or «—» without votes."""
    if not votes:
        return "—"
    low, high = storage.wilson_interval(likes, votes)
    return texts.STATS_INTERVAL.format(
        ratio=f"{likes / votes:.0%}", low=f"{low * 100:.0f}", high=f"{high:.0%}"
    )


def version_lines(method: str, versions: list[VersionStats], arms: Arms) -> list[str]:
    """One line per version of `method`; a single version is only named (its numbers are the
    method's). A version serving an experiment's arm is marked «(A)» / «(B)»."""
    running = arms.experiment
    serving = arms.versions() if running is not None and running.method == method else {}
    own = [row for row in versions if row.method == method]

    def mark(version: str) -> str:
        letters = [arm for arm, served in serving.items() if served == version]
        return texts.STATS_ARM_MARK.format(arm=", ".join(letters)) if letters else ""

    if len(own) == 1:
        return [texts.STATS_ONE_VERSION.format(version=own[0].model, arm=mark(own[0].model))]
    return [
        texts.STATS_VERSION.format(
            version=row.model,
            arm=mark(row.model),
            jokes=row.jokes,
            votes=row.votes,
            ratio=ratio_text(row.likes, row.votes),
        )
        for row in own
    ]


async def experiment_lines(session: AsyncSession, arms: Arms, method_label: str) -> list[str]:
    """The running experiment: its versions, each arm's numbers, which arm leads and whether
    the intervals still overlap. Nothing when no experiment runs."""
    running = arms.experiment
    if running is None:
        return []
    serving = arms.versions()
    versions = {arm: serving.get(arm) for arm in running.methods}
    stats = await arm_stats(session, running.method, versions)
    lines = [
        texts.STATS_EXPERIMENT.format(
            method=method_label,
            a=versions.get("A") or texts.EXPERIMENT_NOT_LOADED,
            b=versions.get("B") or texts.EXPERIMENT_NOT_LOADED,
        )
    ]
    for arm, row in stats.items():
        lines.append(
            texts.STATS_EXPERIMENT_ARM.format(
                arm=arm, jokes=row.jokes, votes=row.votes, ratio=ratio_text(row.likes, row.votes)
            )
        )
    verdict = compare_arms(stats["A"], stats["B"])
    if not verdict.compared:
        lines.append(texts.EXPERIMENT_TOO_EARLY)
    elif verdict.leader is None:
        lines.append(texts.EXPERIMENT_TIE)
    elif verdict.overlap:
        lines.append(texts.EXPERIMENT_LEADS_OVERLAP.format(arm=verdict.leader))
    else:
        lines.append(texts.EXPERIMENT_LEADS_APART.format(arm=verdict.leader))
    return lines


__all__ = ["experiment_lines", "ratio_text", "version_lines"]
