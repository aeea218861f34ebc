"""Draw the line drawings of the "Protect your back" course at 2x (1120 px wide).

    .venv/bin/pip install pillow   # only this script needs it, not the package
    .venv/bin/python tools/draw_course_images.py

The emails show each picture at 560 px (the `width` in the front matter), so a 1120 px file is
sharp on high-density screens. Each drawing sits on a light rounded panel with a soft border and
transparent corners: in dark mode, and when Gmail's apps or Outlook force dark colours on the
email (they leave images alone), it reads as a framed plate instead of dark lines vanishing into
a dark background. Files are 16-colour palette PNGs, a few kilobytes each.

Coordinates below are in 1x pixels (560 wide); drawing happens at 3x the output size and is
scaled down, which smooths the lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "content" / "protect-your-back" / "images"
WIDTH = 560  # 1x width, as shown in the emails
SCALE = 2  # the file is 2x
SUPER = 3  # drawn at SUPER times the file size, then scaled down

PANEL = "#ffffff"
BORDER = "#cfe0db"
FLOOR = "#dbe8e4"
INK = "#0f5c4d"  # the brand colour
FAINT = "#a9cbc2"  # a starting position
GUIDE = "#7fa89e"  # dashed guide lines
ARROW = "#b8501f"  # the accent colour: movement

Point = tuple[float, float]


class Pen:
    """Draws in 1x coordinates, optionally moved and scaled (the routine's small panels)."""

    def __init__(self, draw: ImageDraw.ImageDraw, k: float, dx: float = 0, dy: float = 0):
        self.draw, self.k, self.dx, self.dy = draw, k, dx, dy
        self.unit = SCALE * SUPER

    def at(self, dx: float, dy: float, k: float) -> Pen:
        return Pen(self.draw, self.k * k, self.dx + dx * self.k, self.dy + dy * self.k)

    def _xy(self, p: Point) -> tuple[float, float]:
        return ((self.dx + p[0] * self.k) * self.unit, (self.dy + p[1] * self.k) * self.unit)

    def _w(self, w: float) -> int:
        return max(1, round(w * self.k * self.unit))

    def line(self, points: Sequence[Point], colour: str = INK, w: float = 6) -> None:
        xy = [self._xy(p) for p in points]
        self.draw.line(xy, fill=colour, width=self._w(w), joint="curve")
        r = self._w(w) / 2
        for x, y in (xy[0], xy[-1]):  # round caps
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)

    def dashed(self, a: Point, b: Point, colour: str = GUIDE, w: float = 2.5) -> None:
        length = math.dist(a, b)
        steps = int(length // 12)
        for i in range(steps):
            t0, t1 = i / steps, (i + 0.55) / steps
            self.line([_lerp(a, b, t0), _lerp(a, b, t1)], colour, w)

    def head(self, centre: Point, r: float = 15, colour: str = INK, w: float = 5) -> None:
        x, y = self._xy(centre)
        rr = r * self.k * self.unit
        self.draw.ellipse((x - rr, y - rr, x + rr, y + rr), outline=colour, width=self._w(w))

    def arrow(self, points: Sequence[Point], colour: str = ARROW, w: float = 4) -> None:
        self.line(points, colour, w)
        (x0, y0), (x1, y1) = points[-2], points[-1]
        angle = math.atan2(y1 - y0, x1 - x0)
        for side in (-1, 1):
            a = angle + math.pi - side * math.radians(35)
            self.line([(x1, y1), (x1 + 12 * math.cos(a), y1 + 12 * math.sin(a))], colour, w)

    def floor(self, y: float, x0: float = 40, x1: float = 520) -> None:
        self.line([(x0, y), (x1, y)], FLOOR, 8)

    def text(self, at: Point, words: str, size: float = 22) -> None:
        font = ImageFont.load_default(size=round(size * self.k * self.unit))
        self.draw.text(self._xy(at), words, fill=INK, font=font, anchor="mm")


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def bend(a: Point, b: Point, la: float, lb: float, up: bool = True) -> Point:
    """The middle joint (knee, elbow) of a limb from a to b with segments la and lb, on the
    upper side of the line a-b (smaller y) when ``up``, else on the lower side."""
    distance = math.dist(a, b)
    d = min(distance, la + lb - 1e-6)
    along = (la**2 - lb**2 + d**2) / (2 * d)
    h = math.sqrt(max(la**2 - along**2, 0))
    ux, uy = (b[0] - a[0]) / distance, (b[1] - a[1]) / distance
    px, py = -uy, ux
    if (py < 0) != up:
        px, py = -px, -py
    return (a[0] + ux * along + px * h, a[1] + uy * along + py * h)


# -- the figures -------------------------------------------------------------------------------


def shoulder_bridge(pen: Pen, extras: bool = True) -> None:
    floor = 200
    shoulder, foot = (150.0, 188.0), (380.0, 192.0)
    if extras:  # the starting position, lying flat, knees bent
        hip0 = (262.0, 189.0)
        knee0 = bend(hip0, foot, 88, 95)
        pen.line([shoulder, hip0, knee0, foot, (403, 195)], FAINT, 6)
    # Hips lifted: shoulders, hips and knees on one straight slope.
    angle = _solve(lambda a: math.dist(_polar(shoulder, 200, a), foot) - 95, 0.05, 1.2)
    knee = _polar(shoulder, 200, angle)
    hip = _polar(shoulder, 112, angle)
    pen.head((shoulder[0] - 27, 181))
    pen.line([(shoulder[0] - 12, 186), shoulder, hip, knee, foot, (403, 195)])
    pen.line([(shoulder[0] + 4, 191), (shoulder[0] + 112, 194)], INK, 5)  # arm long on the mat
    if extras:  # up, from the starting position to the bridge
        x = 250.0
        top = shoulder[1] - (x - shoulder[0]) * math.tan(angle)
        pen.arrow([(x, 182), (x, top + 9)])
    pen.floor(floor)


def swan_dive(pen: Pen, extras: bool = True) -> None:
    floor = 200
    feet, hip = (62.0, 192.0), (250.0, 191.0)
    if extras:  # lying flat
        pen.line([hip, (380, 190)], FAINT, 6)
    shoulder = (372.0, 150.0)
    pen.line([(52, 196), feet, hip, (318, 184), shoulder])  # legs long, upper back curving up
    pen.line([shoulder, (389, 132)])  # neck, long
    pen.head((399, 118))
    hand = (402.0, 193.0)
    elbow = bend(shoulder, hand, 36, 38, up=False)
    elbow = (min(elbow[0], shoulder[0] - 6), elbow[1])  # bent, close to the side
    pen.line([shoulder, elbow, hand, (418, 194)], INK, 5)
    if extras:  # the chest rising, along an arc around the hips
        arc = [
            (318 + 150 * math.cos(math.radians(a)), 190 - 150 * math.sin(math.radians(a)))
            for a in range(8, 31, 2)
        ]
        pen.arrow(arc)
    pen.floor(floor)


def plank(pen: Pen, extras: bool = True) -> None:
    floor = 200
    toes, ankle = (80.0, 196.0), (92.0, 184.0)
    shoulder = (398.0, 132.0)
    elbow, hand = (398.0, 193.0), (456.0, 193.0)
    direction = (shoulder[0] - ankle[0], shoulder[1] - ankle[1])
    unit = math.hypot(*direction)
    ux, uy = direction[0] / unit, direction[1] / unit
    neck_end = (shoulder[0] + ux * 12, shoulder[1] + uy * 12)
    pen.head((shoulder[0] + ux * 30, shoulder[1] + uy * 30))
    pen.line([toes, ankle, shoulder, neck_end])
    pen.line([shoulder, elbow, hand], INK, 5)
    if extras:  # the straight line, drawn parallel above the body
        off = (uy * 34, -ux * 34)
        pen.dashed(
            (ankle[0] + off[0], ankle[1] + off[1]),
            (shoulder[0] + ux * 70 + off[0], shoulder[1] + uy * 70 + off[1]),
        )
    pen.floor(floor)


def calf_raise(pen: Pen, extras: bool = True) -> None:
    floor = 250
    chair_x = 304
    pen.line([(chair_x, 98), (chair_x, floor - 4)], GUIDE, 6)  # chair back and back leg
    pen.line([(chair_x, 172), (chair_x + 58, 172), (chair_x + 58, floor - 4)], GUIDE, 6)
    if extras:  # heel down
        pen.line([(214, 246), (250, 246)], FAINT, 6)
    ankle, heel, ball, toes = (224.0, 228.0), (214.0, 232.0), (240.0, 246.0), (252.0, 247.0)
    hip, shoulder = (224.0, 148.0), (224.0, 68.0)
    pen.head((224, 40))
    pen.line([shoulder, hip, (226, 188), ankle])  # tall, body in one line to the ankles
    pen.line([heel, ankle, ball, toes], INK, 5)
    pen.line([(224, 56), shoulder], INK, 5)
    hand = (chair_x - 2, 100.0)
    pen.line([shoulder, bend(shoulder, hand, 48, 48, up=False), hand], INK, 5)
    pen.line([shoulder, (214, 108), (218, 140)], INK, 5)  # the other arm, relaxed
    if extras:
        pen.arrow([(184, 244), (184, 206)])
    pen.floor(floor, 120, 420)


def running_tall(pen: Pen, extras: bool = True) -> None:
    floor = 270
    if extras:
        pen.dashed((288, 14), (280, 262))
    head, shoulder, hip = (288.0, 42.0), (287.0, 76.0), (281.0, 160.0)
    pen.head(head)
    pen.line([(287, 58), shoulder, hip])
    front_ankle = (306.0, 254.0)
    pen.line([hip, bend(hip, front_ankle, 54, 52, up=False), front_ankle, (328, 262)])
    pen.line([hip, (244, 204), (196, 226), (186, 242)])  # back leg pushing off
    pen.line([shoulder, (306, 114), (334, 100)], INK, 5)  # arms bent and relaxed
    pen.line([shoulder, (262, 110), (252, 138)], INK, 5)
    pen.floor(floor, 90, 470)


def ten_minute_routine(pen: Pen) -> None:
    half = WIDTH / 2
    pen.line([(half, 20), (half, 242)], FLOOR, 3)
    pen.line([(20, 104), (WIDTH - 20, 104)], FLOOR, 3)
    # Each figure at half size in its quarter, without its arrows and starting positions.
    panels: list[tuple[Callable[[Pen, bool], None], float, float]] = [
        (shoulder_bridge, 0, -42),
        (swan_dive, half, -42),
        (plank, 0, 117),
        (calf_raise, half + 20, 92),
    ]
    for number, (figure, dx, dy) in enumerate(panels, start=1):
        figure(pen.at(dx + 6, dy + 20, 0.5), False)
        pen.text((dx + 24, 38 if dy < 0 else 132), str(number))


def _polar(origin: Point, length: float, angle: float) -> Point:
    return (origin[0] + length * math.cos(angle), origin[1] - length * math.sin(angle))


def _solve(f: Callable[[float], float], lo: float, hi: float) -> float:
    for _ in range(60):  # bisection: f changes sign between lo and hi
        mid = (lo + hi) / 2
        if (f(lo) < 0) == (f(mid) < 0):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# -- files -------------------------------------------------------------------------------------

DRAWINGS: dict[str, tuple[int, Callable[[Pen], None]]] = {
    "shoulder-bridge.png": (230, shoulder_bridge),
    "swan-dive.png": (230, swan_dive),
    "plank.png": (230, plank),
    "calf-raises.png": (280, calf_raise),
    "running-tall.png": (290, running_tall),
    "ten-minute-routine.png": (262, ten_minute_routine),
}


def render(height: int, figure: Callable[[Pen], None]) -> Image.Image:
    unit = SCALE * SUPER
    big = Image.new("RGBA", (WIDTH * unit, height * unit), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    radius, edge = 14 * unit, 1.5 * unit
    draw.rounded_rectangle((0, 0, big.width - 1, big.height - 1), radius, fill=BORDER)
    draw.rounded_rectangle(
        (edge, edge, big.width - 1 - edge, big.height - 1 - edge), radius - edge, fill=PANEL
    )
    figure(Pen(draw, 1.0))
    return big.resize((WIDTH * SCALE, height * SCALE), Image.Resampling.LANCZOS)


def _palette() -> list[int]:
    """16 colours: transparent (index 0), the inks, and the panel-to-ink steps that smooth
    edges. A fixed palette keeps the accent orange orange (an adaptive one merges it away)."""
    inks = [INK, ARROW, GUIDE, FAINT, FLOOR, BORDER]
    colours = [(0, 0, 0), _rgb(PANEL)] + [_rgb(c) for c in inks]
    for ink, steps in ((INK, (0.25, 0.5, 0.75)), (ARROW, (0.35, 0.7)), (GUIDE, (0.4, 0.7))):
        colours += [_mix(_rgb(PANEL), _rgb(ink), t) for t in steps]
    return [v for rgb in colours for v in rgb]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    rgb = ImageColor.getrgb(colour)
    return rgb[0], rgb[1], rgb[2]


def save(image: Image.Image, path: Path) -> None:
    """A 16-colour palette PNG; index 0 is transparent, for the panel's rounded corners."""
    palette = Image.new("P", (1, 1))
    palette.putpalette([*_palette()[3:], 0, 0, 0])  # index 0 is never chosen by quantize
    solid = Image.new("RGB", image.size, PANEL)
    solid.paste(image.convert("RGB"), mask=image.getchannel("A"))
    quantised = solid.quantize(palette=palette, dither=Image.Dither.NONE)
    shifted = Image.eval(quantised, lambda i: i + 1)  # panel colours move to indexes 1..15
    corners = image.getchannel("A").point(lambda a: 0 if a >= 128 else 255)
    shifted.paste(0, mask=corners)
    shifted.putpalette(_palette())
    shifted.save(path, optimize=True, transparency=0, bits=4)


def main() -> None:
    for name, (height, figure) in DRAWINGS.items():
        path = OUT / name
        save(render(height, figure), path)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
