#!/usr/bin/env python3
"""The demo's before/after sheet: one PNG, one labelled row per step of scripts/demo.sh.

Usage: demo_sheet.py OUT.png "LABEL=PNG PNG ..." ["LABEL=PNG ..." ...]
Each argument is one row: its label (drawn above the row), then the pictures, left to
right, enlarged 2x with nearest-neighbour sampling so 64 px tiles stay crisp.
"""
import sys

from PIL import Image, ImageDraw, ImageFont

SCALE, PAD, LABEL_H = 2, 4, 14


def main(argv):
    out, rows = argv[1], []
    for spec in argv[2:]:
        label, _, paths = spec.partition("=")
        tiles = [Image.open(p).convert("RGB") for p in paths.split()]
        tiles = [t.resize((t.width * SCALE, t.height * SCALE), Image.NEAREST) for t in tiles]
        rows.append((label, tiles))
    width = max(sum(t.width + PAD for t in tiles) + PAD for _, tiles in rows)
    height = sum(LABEL_H + max(t.height for t in tiles) + PAD for _, tiles in rows) + PAD
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    y = PAD
    for label, tiles in rows:
        draw.text((PAD, y), label, fill=(0, 0, 0), font=font)
        y += LABEL_H
        x = PAD
        for t in tiles:
            sheet.paste(t, (x, y))
            x += t.width + PAD
        y += max(t.height for t in tiles) + PAD
    sheet.save(out)


if __name__ == "__main__":
    main(sys.argv)
