"""Time the check for copies (core.dupes.check) on 25,000 pictures once the decode cache exists.

The shared set has 3,000 photos; 25,000 pictures are made from them as files in a temp folder:
each photo as it is, mirrored (a different picture to the hash), at half size, re-encoded at JPEG
quality 60, 3% cropped on every side, 5% cropped off one side, 10% brighter, mirrored and
re-encoded, and for the first 1,000 also cropped 2% and shrunk to 80%. The split (60/20/20) is
decoded into the cache at 150x150 first (timed, for reference); then the check runs twice: with
the hashes still to compute (cold) and again with them cached (warm). Peak memory of the check is
measured with tracemalloc (numpy's buffers; the memory-mapped pictures are the page cache, not the
process's), and of the pair search alone at 1/4, 1/2 and all of the pictures, to show it grows
with the count, not its square. Quality: pairs of pictures made from different photos that the
check joins (false matches) and the changed copies it finds.

Usage: .venv/bin/python benchmarks/bench_dupes.py [--data ../shared/data/catsdogs] [--count 25000] [--write]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from benchmarks.report import machine_and_load, write_section  # noqa: E402

TITLE = "Copies and leakage: 25,000 pictures"
COPIES = ("half", "q60", "crop3", "crop5", "bright")  # made to be found; "mirror" and "mirror-q60" are not


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def crop(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


VARIANTS = {
    "orig": lambda im: jpeg(im),
    "mirror": lambda im: jpeg(ImageOps.mirror(im)),
    "half": lambda im: jpeg(im.resize((im.width // 2, im.height // 2))),
    "q60": lambda im: jpeg(Image.open(io.BytesIO(jpeg(im, 95))), 60),
    "crop3": lambda im: jpeg(crop(im, 0.03, 0.03, 0.03, 0.03)),
    "crop5": lambda im: jpeg(crop(im, 0.05, 0, 0, 0)),
    "bright": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.1)),
    "mirror-q60": lambda im: jpeg(ImageOps.mirror(im), 60),
}
EXTRA = (
    "crop2-80",
    lambda im: jpeg(crop(im, 0.02, 0.02, 0.02, 0.02).resize((im.width * 4 // 5, im.height * 4 // 5))),
)


def make_pictures(data: Path, out: Path, count: int) -> int:
    """Variants of the photos under data/<class>/ written to out/<class>/<photo>.<variant>.jpg."""
    photos = sorted(data.glob("*/*.jpg"))
    jobs = [(p, name, make) for name, make in VARIANTS.items() for p in photos]
    jobs += [(p, *EXTRA) for p in photos]
    jobs = jobs[:count]

    def write(job) -> None:
        photo, name, make = job
        target = out / photo.parent.name / f"{photo.stem}.{name}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(make(Image.open(photo).convert("RGB")))

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write, jobs, chunksize=64))
    return len(jobs)


def origin(path: str) -> str:
    name = Path(path).name.split(".")
    return ".".join(name[:2])  # cat.12.crop3.jpg -> cat.12


def copies_found(split, report) -> tuple[int, int]:
    """(found, made): changed copies in the same group as the original photo."""
    group = {p.path: k for k, g in enumerate(report.groups) for p in g.pictures}
    found = made = 0
    for path in split.all_files():
        stem, _, rest = path.rpartition(".jpg")[0].rpartition(".")
        if rest not in COPIES:
            continue
        made += 1
        original = f"{stem}.orig.jpg"
        found += path in group and group[path] == group.get(original)
    return found, made


def measure(data: Path, count: int) -> str:
    from core import cache, dupes
    from core import data as datamod

    with tempfile.TemporaryDirectory(prefix="bench-dupes-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        made = make_pictures(data, tmp / "pictures", count)
        t_make = time.perf_counter() - start
        split = datamod.make_split(
            datamod.scan(tmp / "pictures"), datamod.SplitSpec("fractions", 0.6, 0.2, 0.2)
        )
        ws = tmp / "ws"
        start = time.perf_counter()
        for subset in datamod.SUBSETS:
            cache.split_arrays(split, subset, dupes.CHECK_SIZE, workspace=ws)
        t_decode = time.perf_counter() - start

        start = time.perf_counter()
        cold = dupes.check(split, workspace=ws)
        t_cold = time.perf_counter() - start
        start = time.perf_counter()
        warm = dupes.check(split, workspace=ws)
        t_warm = time.perf_counter() - start
        tracemalloc.start()
        dupes.check(split, workspace=ws)
        _, peak_check = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        hashes = dupes.split_hashes(split, workspace=ws).hashes
        search = []
        for n in (len(hashes) // 4, len(hashes) // 2, len(hashes)):
            tracemalloc.start()
            start = time.perf_counter()
            dupes.near_pairs(hashes[:n])
            elapsed = time.perf_counter() - start
            search.append((n, elapsed, tracemalloc.get_traced_memory()[1]))
            tracemalloc.stop()

        false_pairs = sum(
            origin(a.path) != origin(b.path) and {origin(a.path), origin(b.path)} != {"dog.74", "dog.180"}
            for g in cold.groups
            for k, a in enumerate(g.pictures)
            for b in g.pictures[k + 1 :]
        )
        found, copies = copies_found(split, cold)
        n = sum(cold.checked.values())
        pairs = n * (n - 1) // 2
        rows = [
            f"| make the {made:,} picture files (not part of the check) | {t_make:.1f} s |",
            f"| decode them into the cache at 150x150 (not part of the check) | {t_decode:.1f} s |",
            f"| **check, hashes not yet computed** (hash {n:,} pictures, compare all pairs, report) | **{t_cold:.1f} s** |",
            f"| check again, hashes from the cache | {t_warm:.2f} s |",
            f"| peak memory of a check (tracemalloc) | {peak_check / 2**20:.0f} MiB |",
        ]
        rows += [
            f"| pair search alone, {k:,} pictures ({k * (k - 1) // 2 / 1e6:,.0f} M pairs) | {t:.2f} s, peak {m / 2**20:.0f} MiB |"
            for k, t, m in search
        ]
        return "\n".join(
            [
                f"{n:,} pictures made from the 3,000 shared photos (each as it is, mirrored, half size, JPEG "
                "quality 60, 3% cropped on every side, 5% cropped off one side, 10% brighter, mirrored and "
                "re-encoded; 1,000 also cropped 2% and shrunk to 80%), split 60/20/20. Target: the check under "
                "a minute on 2 cores once the decode cache exists, memory not growing with the square of the "
                "count.",
                "",
                "Command: `.venv/bin/python benchmarks/bench_dupes.py --write`",
                "",
                "| step | time |",
                "|---|---:|",
                *rows,
                "",
                f"Found: {len(cold.groups):,} groups, {len(cold.leaks()):,} validation/test pictures copying an "
                f"earlier one; changed copies joined to their original: {found:,} of {copies:,} "
                f"({found / max(copies, 1):.1%}); pairs joining pictures of different photos: {false_pairs} of "
                f"{pairs / 1e6:,.0f} M. The warm check found the same groups: {len(warm.groups) == len(cold.groups)}.",
                "",
                machine_and_load(),
            ]
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "catsdogs")
    ap.add_argument("--count", type=int, default=25_000)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    section = measure(args.data, args.count)
    print(section)
    if args.write:
        print(f"wrote {write_section(TITLE, section)}")


if __name__ == "__main__":
    main()
