"""The dashboard's pure JavaScript functions, run in Chromium as ES modules."""

from __future__ import annotations

from typing import Any

import pytest


def call(page: Any, module: str, expression: str, arg: Any = None) -> Any:
    """Evaluate ``expression`` in the page, with web/js/<module> as ``m``.

    ``arg`` reaches the expression as ``arg``, passed as JSON by Playwright.
    """
    script = (
        f"async (arg) => {{ const m = await import('./js/{module}');"
        f" return {expression}; }}"
    )
    return page.evaluate(script, arg)


@pytest.fixture
def loaded(page: Any, server_url: str, page_errors: list[str]) -> Any:
    page.goto(server_url)
    yield page
    assert page_errors == []


def test_line_append_keeps_first_value_and_sorts(loaded: Any) -> None:
    result = call(
        loaded,
        "lines.js",
        """(() => {
          const line = new m.Line([0, 1, 2], [1, "NaN", 3]);
          line.append([4, 2, 3, 5], [5, 99, "Infinity", null]);
          return [line.steps, line.values];
        })()""",
    )
    assert result == [[0, 1, 2, 3, 4, 5], [1, None, 3, None, 5, None]]


def test_abandoned_tails_follow_the_branch_tree(loaded: Any) -> None:
    # root 1 -> undo at 100 (2) -> undo at 150 (3); then back to step 120 of 2 (4).
    branches = [
        {"id": 1, "parent": None, "start_step": 0, "current": False},
        {"id": 2, "parent": 1, "start_step": 100, "current": False},
        {"id": 3, "parent": 2, "start_step": 150, "current": False},
        {"id": 4, "parent": 2, "start_step": 120, "current": True},
    ]
    tails = call(loaded, "lines.js", "m.abandonedTails(arg)", branches)
    assert sorted((tail["branch"], tail["fromStep"]) for tail in tails) == [
        (1, 100),
        (2, 120),
        (3, 150),
    ]


def test_align_lines_bridges_missing_steps_but_not_gaps(loaded: Any) -> None:
    aligned = call(
        loaded,
        "charts.js",
        """m.alignLines([
          {steps: [0, 1, 2], values: [1, null, 3]},
          {steps: [0, 2], values: [5, 6]},
        ]).map((column) => column.map((v) => v === undefined ? "skip" : v))""",
    )
    assert aligned == [[0, 1, 2], [1, None, 3], [5, "skip", 6]]


@pytest.mark.parametrize(
    ("param", "text", "expected"),
    [
        ("lr", "0.01", {"value": 0.01}),
        ("lr", " 1e-3 ", {"value": 0.001}),
        ("lr", "", {}),
        ("lr", "0", {"error": "\N{GREEK SMALL LETTER ALPHA} must be > 0, got 0"}),
        (
            "lr",
            "fast",
            {"error": '\N{GREEK SMALL LETTER ALPHA} must be a number, got "fast"'},
        ),
        (
            "lr",
            "Infinity",
            {"error": "\N{GREEK SMALL LETTER ALPHA} must be finite, got Infinity"},
        ),
        ("momentum", "0", {"value": 0}),
        ("momentum", "0.999", {"value": 0.999}),
        ("momentum", "1", {"error": "momentum must be in [0, 1), got 1"}),
        ("momentum", "-0.1", {"error": "momentum must be in [0, 1), got -0.1"}),
    ],
)
def test_parse_nudge_value_mirrors_server_rules(
    loaded: Any, param: str, text: str, expected: dict[str, Any]
) -> None:
    assert (
        call(loaded, "nudges.js", f"m.parseNudgeValue({param!r}, {text!r})") == expected
    )


def test_format_value_reads_well(loaded: Any) -> None:
    values = "[0.1, 0.0001, 12345678, 2.5, NaN, Infinity, -Infinity, null, 0.123456]"
    formatted = call(loaded, "format.js", f"{values}.map(m.formatValue)")
    assert formatted == [
        "0.1",
        "1.00e-4",
        "1.23e+7",
        "2.5",
        "NaN",
        "+\N{INFINITY}",
        "\N{MINUS SIGN}\N{INFINITY}",
        "\N{EN DASH}",
        "0.1235",
    ]


def test_smoothing_is_bias_corrected_and_keeps_gaps(loaded: Any) -> None:
    smoothed = call(loaded, "trends.js", "m.smoothEma([2, 2, null, 2, 4], 0.5)")
    assert smoothed[:4] == [2, 2, None, 2]  # no pull towards zero at the start
    assert 2 < smoothed[4] < 4
    assert call(
        loaded, "trends.js", "m.slope([0, 1, 2, 3], [1, 0.9, 0.8, 0.7])"
    ) == pytest.approx(-0.1)


def test_nudge_effect_verdicts_follow_the_slopes(loaded: Any) -> None:
    cases = [[-0.004, "loss"], [-0.001, "loss"], [0.002, "loss"], [0.002, "val_acc"]]
    script = """arg.map(([after, key]) => {
      const steps = [...Array(200).keys()];
      const values = steps.map((s) =>
         s < 100 ? 2 - 0.001 * s : 1.9 + after * (s - 100));
      return m.nudgeEffect(steps, values, 100, { window: 50, key });
    })"""
    effects = call(loaded, "trends.js", script, cases)
    assert [effect["verdict"] for effect in effects] == [
        "helped",
        "neutral",
        "hurt",
        "helped",
    ]
    for effect, (after, _) in zip(effects, cases, strict=True):
        assert effect["slopeBefore"] == pytest.approx(-0.001)
        assert effect["slopeAfter"] == pytest.approx(after)


def test_compare_url_round_trips_with_a_branch(loaded: Any) -> None:
    hash_ = "#/compare?runs=3,5:12,3,x&metric=train/loss&align=time&y=log&smooth=0.6"
    state = call(loaded, "compare.js", "m.parseCompareQuery(arg)", hash_)
    assert state == {
        "runs": [{"id": 3, "branch": None}, {"id": 5, "branch": 12}],
        "metric": "train/loss",
        "align": "time",
        "y": "log",
        "smooth": 0.6,
    }
    again = call(loaded, "compare.js", "m.compareHash(m.parseCompareQuery(arg))", hash_)
    assert (
        again == "#/compare?runs=3,5:12&metric=train/loss&align=time&y=log&smooth=0.6"
    )


def test_branch_segments_and_step_ranges(loaded: Any) -> None:
    branches = [
        {"id": 1, "parent": None, "start_step": 0, "current": False},
        {"id": 2, "parent": 1, "start_step": 100, "current": True},
        {"id": 3, "parent": 1, "start_step": 150, "current": False},
    ]
    segments = call(loaded, "views.js", "m.branchSegments(arg, 3)", branches)
    assert segments == [
        {"branch": 1, "from": 0, "to": 150},
        {"branch": 3, "from": 150, "to": None},
    ]
    assert call(
        loaded, "views.js", "[m.branchAt(arg, 120), m.branchAt(arg, 99)]", branches
    ) == [2, 1]
    span = call(
        loaded,
        "views.js",
        "m.stepRange([0, 10, 20, 30], [5, 6, 7, 8], {min: 12, max: 18})",
    )
    assert span == {"min": 6, "max": 7}
