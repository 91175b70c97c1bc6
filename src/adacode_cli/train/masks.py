"""Free-form brush-stroke hole masks for inpainting, as the official `brush_stroke_mask`.

One to three strokes, each a zig-zag polyline of 8..27 segments whose length scales with the image
diagonal, drawn 12..79 px wide with round joints. The official code draws the strokes straight
onto the image in white; we draw a separate mask (so it can be saved) and paint the holes white,
which gives the same pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

MIN_VERTICES, MAX_VERTICES = 8, 28  # numpy-style bounds: 8..27 segments
MEAN_ANGLE = 2 * math.pi / 5
ANGLE_RANGE = 2 * math.pi / 15
MIN_WIDTH, MAX_WIDTH = 12, 80
HOLE_COLOUR = 255


def brush_stroke_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A HxW bool array, True inside the holes."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    radius = math.sqrt(height * height + width * width) / 8
    for _ in range(int(rng.integers(1, 4))):
        vertices = _stroke(height, width, radius, rng)
        stroke_width = int(rng.uniform(MIN_WIDTH, MAX_WIDTH))
        draw.line(vertices, fill=HOLE_COLOUR, width=stroke_width)
        half = stroke_width // 2
        for x, y in vertices:
            draw.ellipse((x - half, y - half, x + half, y + half), fill=HOLE_COLOUR)
    return np.asarray(mask) > 0


def _stroke(
    height: int, width: int, radius: float, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Vertices of one zig-zag: alternate turns around the mean angle, normal step lengths."""
    count = int(rng.integers(MIN_VERTICES, MAX_VERTICES))
    low = MEAN_ANGLE - rng.uniform(0, ANGLE_RANGE)
    high = MEAN_ANGLE + rng.uniform(0, ANGLE_RANGE)
    angles = [
        2 * math.pi - rng.uniform(low, high) if i % 2 == 0 else rng.uniform(low, high)
        for i in range(count)
    ]
    vertices = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
    for angle in angles:
        step = float(np.clip(rng.normal(radius, radius // 2), 0, 2 * radius))
        x = np.clip(vertices[-1][0] + step * math.cos(angle), 0, width)
        y = np.clip(vertices[-1][1] + step * math.sin(angle), 0, height)
        vertices.append((int(x), int(y)))
    return vertices


def punch_holes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of an HxWx3 uint8 image with the masked pixels set to pure white."""
    holed = image.copy()
    holed[mask] = HOLE_COLOUR
    return holed
