#!/usr/bin/env python3
"""A procedural painting for the style-transfer example (public domain: generated here, no source image).

Swirling brush strokes in the manner of a night sky: a flow field made of a few vortices, white noise
smeared along it (line integral convolution, which makes stroke-like streaks), coloured with a palette of
deep blues, teal and yellow, plus a glowing disc. Pure Python (no numpy), a few seconds at 256 px.

    python3 make_painting.py painting.png [size]
"""
import math
import random
import struct
import sys
import zlib


def write_png(path, w, h, rows):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "painting.png"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    rnd = random.Random(1889)
    # Vortices: (x, y, strength, radius) in unit coordinates.
    vortices = [(0.3, 0.35, 1.0, 0.18), (0.62, 0.3, -0.8, 0.14), (0.8, 0.62, 1.1, 0.2), (0.2, 0.75, -0.9, 0.16),
                (0.52, 0.7, 0.7, 0.12)]

    def flow(x, y):
        # A gentle left-to-right wind plus the vortices' swirl.
        vx, vy = 1.0, 0.25 * math.sin(6 * x)
        for cx, cy, s, r in vortices:
            dx, dy = x - cx, y - cy
            d2 = dx * dx + dy * dy
            k = s * math.exp(-d2 / (2 * r * r)) / max(math.sqrt(d2), 1e-3) * 3
            vx += -dy * k
            vy += dx * k
        m = math.hypot(vx, vy) or 1.0
        return vx / m, vy / m

    noise = [[rnd.random() for _ in range(n)] for _ in range(n)]
    field = [[flow((j + 0.5) / n, (i + 0.5) / n) for j in range(n)] for i in range(n)]
    steps = max(6, n // 24)
    palette = [(12, 28, 84), (28, 64, 140), (60, 120, 170), (110, 170, 180), (220, 200, 90), (250, 230, 140)]

    def colour(t):
        t = min(max(t, 0.0), 0.999) * (len(palette) - 1)
        k, f = int(t), t - int(t)
        a, b = palette[k], palette[k + 1]
        return [a[c] + (b[c] - a[c]) * f for c in range(3)]

    rows = []
    for i in range(n):
        row = []
        for j in range(n):
            # Line integral convolution: average the noise along the stream line through (i, j).
            acc, cnt = 0.0, 0
            for sign in (1, -1):
                x, y = j + 0.5, i + 0.5
                for _ in range(steps):
                    xi, yi = int(x) % n, int(y) % n
                    acc += noise[yi][xi]
                    cnt += 1
                    fx, fy = field[yi][xi]
                    x += sign * fx
                    y += sign * fy
            streak = acc / cnt
            u, v = (j + 0.5) / n, (i + 0.5) / n
            # Brightness: sky bands, brighter near the vortices' cores, plus a moon at the top right.
            base = 0.25 + 0.25 * math.sin(8 * v + 3 * math.sin(4 * u))
            for cx, cy, s, r in vortices:
                base += 0.35 * math.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * (r * 0.6) ** 2))
            moon = math.exp(-((u - 0.85) ** 2 + (v - 0.15) ** 2) / 0.004)
            t = base + 1.6 * (streak - 0.5) + 0.9 * moon
            c = colour(t)
            row.extend(int(min(255, max(0, round(ch)))) for ch in c)
        rows.append(row)
    write_png(path, n, n, rows)
    print(f"wrote {path} ({n}x{n})")


if __name__ == "__main__":
    main()
