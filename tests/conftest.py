"""Shared fixtures: a temporary workspace, small image folders made on the fly, ../shared paths."""

from __future__ import annotations

import http.server
import io
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from tests import imagefiles

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CONVNET_SHARED", REPO.parent / "shared"))
CATSDOGS = SHARED / "data" / "catsdogs"
WEIGHTS = SHARED / "weights"
MOBILENET_025 = WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5"  # the smallest real ImageNet base
needs_mobilenet = pytest.mark.skipif(not MOBILENET_025.is_file(), reason="no shared MobileNet weights")


def write_status(path: Path, **fields) -> None:
    """Another writer of status.json (like core.runs.launch), going round RunControl."""
    import json

    from core.fileio import atomic_write_json

    atomic_write_json(path / "status.json", {**json.loads((path / "status.json").read_text()), **fields})


def fake_run(ws: Path, **status) -> Path:
    """A run folder (no process) whose status.json holds `status`."""
    from core import rundir, runs

    path = rundir.run_dir(runs.create_run({"mode": "scratch"}, ws), ws)
    write_status(path, **status)
    return path


def make_demo_split(ws: Path, name: str = "demo", per_class: int = 20, size: int = 64):
    """The demo shapes (4 classes) split 60/20/20 and saved in the workspace."""
    from core import data, demo

    root = demo.generate(ws / "datasets" / f"demo-{per_class}-{size}", per_class=per_class, size=size)
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2), name=name)
    data.save_split(split, workspace=ws)
    return split


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty workspace, also set as $CONVNET_WORKSPACE for code that reads it."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("CONVNET_WORKSPACE", str(ws))
    return ws


def make_class_folders(root: Path, counts: dict[str, int], size=(48, 40)) -> Path:
    """root/<class>/<class>_<i>.png with distinct noisy images."""
    seed = 0
    for name, n in counts.items():
        for i in range(n):
            imagefiles.noisy(root / name / f"{name}_{i:03d}.png", size=size, seed=seed)
            seed += 1
    return root


def zipped_class_folders(root: Path, counts: dict[str, int]) -> bytes:
    """A zip of make_class_folders(root, counts), inside a top folder named like root."""
    import io
    import zipfile

    make_class_folders(root, counts)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in root.rglob("*.png"):
            z.write(f, f"{root.name}/{f.relative_to(root)}")
    return buf.getvalue()


@pytest.fixture
def class_folders(tmp_path) -> Path:
    """Three classes (a: 30, b: 20, c: 10 images), plus one hidden file and one text file."""
    root = make_class_folders(tmp_path / "shapes", {"a": 30, "b": 20, "c": 10})
    (root / "a" / ".DS_Store").write_bytes(b"junk")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """Two classes of good images, plus every kind of bad and odd file in class 'cats'."""
    root = make_class_folders(tmp_path / "messy", {"cats": 6, "dogs": 6})
    for name, make in {**imagefiles.BAD_MAKERS, **imagefiles.ODD_MAKERS}.items():
        make(root / "cats" / name)
    return root


def run_cli(*args: str, workspace, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m core ARGS` in a subprocess with this workspace; output captured as text."""
    env = {**os.environ, **(env or {}), "CONVNET_WORKSPACE": str(workspace)}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def pet_zip(tmp_path) -> bytes:
    """Like Microsoft's archive: PetImages/{Cat,Dog}/N.jpg with some broken files, and loose
    files beside PetImages/."""
    for cls in ("Cat", "Dog"):
        for i in range(6):
            imagefiles.noisy(tmp_path / "src" / cls / f"{i}.jpg", seed=i + (10 if cls == "Dog" else 0))
    imagefiles.zero_bytes(tmp_path / "src" / "Cat" / "666.jpg")
    imagefiles.text_as_jpg(tmp_path / "src" / "Dog" / "11702.jpg")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme[1].txt", "Microsoft Cats and Dogs")
        for f in sorted((tmp_path / "src").rglob("*.jpg")):
            z.write(f, f"PetImages/{f.relative_to(tmp_path / 'src')}")
    return buf.getvalue()


class RangeServer:
    """Serves `body` at /pets.zip; records each request's Range header; can cut a response short."""

    def __init__(self, body: bytes) -> None:
        self.body, self.ranges, self.cut_at = body, [], None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/pets.zip":
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                outer.ranges.append(wanted)
                start = int(re.match(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
                if start >= len(outer.body):
                    self.send_error(416)
                    return
                self.send_response(206 if wanted else 200)
                self.send_header("Content-Length", str(len(outer.body) - start))
                self.end_headers()
                payload = outer.body[start:]
                if outer.cut_at is not None:
                    payload, outer.cut_at = payload[: outer.cut_at], None
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pets.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------- a run with a model

COLORS_SIZE = 16
RED, BLUE = (200, 40, 40), (40, 40, 200)


def color_picture(path: Path, color, seed: int) -> None:
    """A 20x20 PNG of one colour with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.normal(0, 25, (20, 20, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def colors(tmp_path_factory) -> Path:
    """A pre-split folder: train/val/test x red/blue; the test set has one odd picture per class
    (a blue picture filed as red and the other way round), so there are confident mistakes."""
    root = tmp_path_factory.mktemp("colors")
    seed = 0
    for subset, n in (("train", 6), ("val", 2), ("test", 3)):
        for name, color in (("red", RED), ("blue", BLUE)):
            for i in range(n):
                color_picture(root / subset / name / f"{name}_{i}.png", color, seed)
                seed += 1
    color_picture(root / "test" / "red" / "red_odd.png", BLUE, 1000)
    color_picture(root / "test" / "blue" / "blue_odd.png", RED, 1001)
    return root


@pytest.fixture(scope="module")
def colors_model(colors, tmp_path_factory) -> Path:
    """A tiny sigmoid convnet trained for a few epochs on the colors' training pictures, as .keras."""
    import keras
    import numpy as np

    from core.images import load_resized

    keras.utils.set_random_seed(0)
    classes = ["blue", "red"]  # scan sorts class folders by name
    files = [(p, classes.index(p.parent.name)) for p in sorted((colors / "train").rglob("*.png"))]
    size = (COLORS_SIZE, COLORS_SIZE)
    x = np.stack([load_resized(p, size, "stretch") for p, _ in files]).astype(np.float32)
    y = np.array([label for _, label in files])
    model = keras.Sequential(
        [
            keras.Input((COLORS_SIZE, COLORS_SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=4, verbose=0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


def colors_run_in(
    ws: Path, colors: Path, colors_model: Path, split: str = "colors", run_id: str | None = "run-1"
) -> str:
    """A run `run_id` (None: a new dated id) over the colors folder saved as split `split` in `ws`,
    colors_model its best.keras."""
    import shutil

    from core.config import TrainConfig
    from core.data import SplitSpec, make_split, save_split, scan
    from core.rundir import run_dir
    from core.runs import create_run

    save_split(make_split(scan(colors), SplitSpec(method="given"), name=split), workspace=ws)
    config = TrainConfig(split=split, image_size=COLORS_SIZE, epochs=1).to_dict()
    run_id = create_run(config, ws, run_id=run_id)
    shutil.copy2(colors_model, run_dir(run_id, ws) / "best.keras")
    return run_id


@pytest.fixture
def colors_run(colors, colors_model, workspace) -> str:
    """Run 'run-1' over the saved split 'colors' with colors_model as best.keras."""
    return colors_run_in(workspace, colors, colors_model)
