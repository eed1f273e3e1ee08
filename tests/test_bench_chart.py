"""`make bench` draws its ratios as a PNG: a real file that PNG readers open, one bar per ratio,
coloured by whether it meets the goal its issue set."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colors, image

from benchmarks.chart import MET, MISSED, NO_GOAL, meets_goal, write_chart

RESULTS = [
    {"what": "Ingest, 384-d", "ours": "16k docs/s", "reference": "19k rows/s", "ratio": 0.87, "goal_at_least": 0.8},
    {"what": "Search p50 vs same SQL", "ours": "4.3 ms", "reference": "1.9 ms", "ratio": 2.27, "goal_at_most": 1.3},
    {"what": "HNSW build, 2 workers vs 0", "ours": "8.7 s", "reference": "13.5 s", "ratio": 1.55},
    {"what": "soak: search (0 ok)", "ours": "-", "reference": "p99 / p50", "ratio": float("nan")},
]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def has_colour(pixels: np.ndarray, colour: str) -> bool:
    wanted = np.array(colors.to_rgb(colour))
    return bool((np.abs(pixels[..., :3] - wanted).max(axis=-1) < 0.02).any())


def test_a_png_with_a_bar_per_ratio_coloured_by_its_goal(tmp_path: Path) -> None:
    path = write_chart(RESULTS, tmp_path / "out" / "ratios.png")
    width, height = png_size(path)
    assert width >= 800 and height >= 200
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert has_colour(pixels, MET) and has_colour(pixels, MISSED) and has_colour(pixels, NO_GOAL)


def test_the_chart_grows_with_the_number_of_ratios(tmp_path: Path) -> None:
    few = png_size(write_chart(RESULTS[:2], tmp_path / "few.png"))
    many = png_size(write_chart(RESULTS * 5, tmp_path / "many.png"))
    assert many[0] == few[0] and many[1] > few[1] * 2


def test_goals_in_both_directions() -> None:
    assert [meets_goal(r) for r in RESULTS] == [True, False, None, None]
    assert meets_goal({"ratio": 0.0, "goal_at_most": 0.0}) is True  # e.g. the soak's error count


def test_nothing_to_draw_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no results"):
        write_chart([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
