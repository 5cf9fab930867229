"""Routes that draw runs' timelines as PNG or SVG images.

Rendering is CPU work in matplotlib, so the handlers are plain ``def``:
FastAPI runs them in its threadpool and the event loop stays free. matplotlib
(about 40 MiB) is imported by the first plot, not when the server starts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy.orm import Session

from panda.protocol import METRIC_KEY_MAX_CHARS
from panda.server.deps import RunId, SessionDep

router = APIRouter(tags=["plots"])

ImageFormat = Literal["png", "svg"]
MEDIA_TYPES: dict[ImageFormat, str] = {"png": "image/png", "svg": "image/svg+xml"}
MAX_RUNS = 20
DPI = 100

# panda.plots.Align, spelled out here so that importing this module leaves
# matplotlib out; tests/server/test_plots.py checks that the two agree.
Align = Literal["step", "time", "relative"]

FormatPath = Annotated[ImageFormat, Path(description="png or svg")]
MetricQuery = Annotated[
    str,
    Query(min_length=1, max_length=METRIC_KEY_MAX_CHARS, description="metric key"),
]
AlignQuery = Annotated[
    Align,
    Query(description="x axis: step, wall-clock time, or time since each run began"),
]
LogQuery = Annotated[bool, Query(description="logarithmic y axis for the metric")]
SmoothQuery = Annotated[
    float, Query(ge=0, lt=1, description="exponential moving average weight")
]
WidthQuery = Annotated[int, Query(ge=200, le=4000, description="pixels")]
HeightQuery = Annotated[int, Query(ge=150, le=4000, description="pixels")]
RunsQuery = Annotated[
    str,
    Query(
        pattern=r"^\d+(,\d+)*$",
        max_length=400,
        description="comma-separated run ids, e.g. 1,2",
    ),
]


@router.get("/runs/{run_id}/plot.{image_format}", response_class=Response)
def plot_run(
    run_id: RunId,
    image_format: FormatPath,
    session: SessionDep,
    metric: MetricQuery = "train/loss",
    align: AlignQuery = "step",
    log_y: LogQuery = False,
    smooth: SmoothQuery = 0.0,
    width: WidthQuery = 1000,
    height: HeightQuery = 600,
) -> Response:
    """Draw one run's metric, its α below and a mark at every applied nudge."""
    return _plot(
        session, [run_id], image_format, metric, align, log_y, smooth, width, height
    )


@router.get("/plot.{image_format}", response_class=Response)
def plot_runs(
    image_format: FormatPath,
    session: SessionDep,
    runs: RunsQuery,
    metric: MetricQuery = "train/loss",
    align: AlignQuery = "step",
    log_y: LogQuery = False,
    smooth: SmoothQuery = 0.0,
    width: WidthQuery = 1000,
    height: HeightQuery = 600,
) -> Response:
    """Draw several runs' timelines of one metric side by side, one line each."""
    run_ids = list(dict.fromkeys(int(run_id) for run_id in runs.split(",")))
    if len(run_ids) > MAX_RUNS:
        raise HTTPException(
            422, f"query.runs: at most {MAX_RUNS} runs per plot, got {len(run_ids)}"
        )
    return _plot(
        session, run_ids, image_format, metric, align, log_y, smooth, width, height
    )


def _plot(
    session: Session,
    run_ids: list[int],
    image_format: ImageFormat,
    metric: str,
    align: Align,
    log_y: bool,
    smooth: float,
    width: int,
    height: int,
) -> Response:
    from panda import plots
    from panda.plots.runs import MetricNotFound, read_timeline

    # Two points per pixel column is all a line can show.
    try:
        lines = [
            read_timeline(session, run_id, metric, max_points=2 * width)
            for run_id in run_ids
        ]
    except MetricNotFound as error:
        raise HTTPException(404, str(error)) from error
    figure = plots.plot_timelines(
        lines,
        metric=metric,
        align=align,
        log_y=log_y,
        smoothing=smooth,
        figsize=(width / DPI, height / DPI),
        dpi=DPI,
    )
    return Response(
        plots.render(figure, image_format), media_type=MEDIA_TYPES[image_format]
    )
