"""Drawing the like-ratio chart: one line per method and model version, its 95% band around it.

Matplotlib's object API on the Agg canvas, never pyplot: pyplot keeps global state and picks a
GUI backend, while a `Figure` on `FigureCanvasAgg` is private to the call, so the bot can draw in
a worker thread (`asyncio.to_thread`) without touching the event loop or another drawing.
Matplotlib is imported on first use: the bot should not pay for it at start-up.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from storage.stats import wilson_interval

TITLE = "Доля лайков по моделям и версиям, накопительно по дням"
Y_LABEL = "нравится (линия) и 95% интервал Уилсона (полоса)"
SIZE_INCHES = (8.0, 4.5)
DPI = 100


@dataclass(frozen=True, slots=True)
class Series:
    """One version's running totals: after `days[i]`, `likes[i]` of `votes[i]` votes were 👍."""

    label: str
    days: list[date]
    likes: list[int]
    votes: list[int]

    def ratios(self) -> list[float]:
        return [likes / votes for likes, votes in zip(self.likes, self.votes, strict=True)]

    def bands(self) -> tuple[list[float], list[float]]:
        intervals = [wilson_interval(k, n) for k, n in zip(self.likes, self.votes, strict=True)]
        return [low for low, _ in intervals], [high for _, high in intervals]


def draw_chart(series: Sequence[Series]) -> bytes:
    """The chart as PNG bytes. Blocking (matplotlib renders on the CPU): run it in a thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for item in series:
        low, high = item.bands()
        (line,) = axes.plot(item.days, item.ratios(), marker="o", markersize=3, label=item.label)
        colour = line.get_color()
        axes.fill_between(item.days, low, high, color=colour, alpha=0.15, linewidth=0)
        if len(item.days) == 1:  # a band needs two days; one day shows its interval as a bar
            axes.vlines(item.days, low, high, color=colour, alpha=0.5, linewidth=2)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_title(TITLE)
    axes.set_ylabel(Y_LABEL, fontsize="small")
    axes.grid(alpha=0.3)
    if series:
        axes.legend(loc="lower left", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


__all__ = ["Series", "draw_chart"]
