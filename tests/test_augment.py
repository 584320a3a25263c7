"""Tests for core.augment: config validation/JSON, the Keras layer stack, seeded previews, named configs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import augment as A  # noqa: E402
from core.augment import PRESETS, AugmentConfig  # noqa: E402

H, W = 24, 32  # non-square on purpose: catches height/width mix-ups
SEEDS = list(range(12))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Three random uint8 images (3, H, W, 3): no symmetry, so a flip is never equal to the original."""
    return np.random.default_rng(0).integers(0, 256, (3, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def midtone_images() -> np.ndarray:
    """Images in [60, 190] so a small brightness shift never clips."""
    return np.random.default_rng(1).integers(60, 191, (3, H, W, 3), dtype=np.uint8)


def _run(model, imgs: np.ndarray) -> np.ndarray:
    """Model on float copies of uint8 images, back as float numpy."""
    return keras.ops.convert_to_numpy(model(imgs.astype("float32"), training=True))


def _random_config(rng: np.random.Generator) -> AugmentConfig:
    """A valid config with every field drawn at random within its limits."""
    kw = {}
    for spec in A.field_specs():
        if spec["kind"] == "float":
            kw[spec["name"]] = float(rng.uniform(spec["min"], spec["max"]))
        elif spec["kind"] == "bool":
            kw[spec["name"]] = bool(rng.integers(0, 2))
        else:
            kw[spec["name"]] = str(rng.choice(spec["choices"]))
    return AugmentConfig(**kw)


# --------------------------------------------------------------------------- identity


def test_identity_is_bit_exact(images):
    cfg = AugmentConfig()
    assert cfg.is_identity() and PRESETS["none"] == cfg
    model = A.build(cfg)
    assert model.name == "augmentation"
    x = images.astype("float32")
    assert np.array_equal(_run(model, images), x)
    out = A.preview(cfg, images, [0, 1, 2])
    assert out.shape == (3, 3, H, W, 3) and out.dtype == np.uint8
    for k in range(3):
        assert np.array_equal(out[:, k], images)


def test_fill_settings_alone_are_identity():
    assert AugmentConfig(fill_mode="constant", fill_value=128).is_identity()


# --------------------------------------------------------------------------- flips


@pytest.mark.parametrize(
    "field, flip", [("horizontal_flip", lambda im: im[:, ::-1]), ("vertical_flip", lambda im: im[::-1])]
)
def test_single_flip_gives_image_or_exact_mirror(images, field, flip):
    out = A.preview(AugmentConfig(**{field: True}), images, SEEDS)
    seen = set()
    for n, img in enumerate(images):
        for k in range(len(SEEDS)):
            v = out[n, k]
            if np.array_equal(v, img):
                seen.add("same")
            elif np.array_equal(v, flip(img)):
                seen.add("flipped")
            else:
                pytest.fail(f"variant {k} of image {n} is neither the image nor its mirror")
    assert seen == {"same", "flipped"}


def test_both_flips_are_independent(images):
    out = A.preview(AugmentConfig(horizontal_flip=True, vertical_flip=True), images, SEEDS)
    outcomes = {
        "none": lambda im: im,
        "h": lambda im: im[:, ::-1],
        "v": lambda im: im[::-1],
        "hv": lambda im: im[::-1, ::-1],
    }
    seen = set()
    for n, img in enumerate(images):
        for k in range(len(SEEDS)):
            match = [name for name, f in outcomes.items() if np.array_equal(out[n, k], f(img))]
            assert len(match) == 1
            seen.add(match[0])
    # RandomFlip("horizontal_and_vertical") would only ever give "none" or "hv".
    assert {"h", "v"} <= seen


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_output_other_seed_differs(images):
    cfg = AugmentConfig(rotation_deg=30, zoom=0.2)
    a = A.preview(cfg, images, [5, 6, 7])
    assert np.array_equal(a, A.preview(cfg, images, [5, 6, 7]))
    # Variant k depends only on seeds[k], not on the other seeds asked for.
    assert np.array_equal(a[:, 1:2], A.preview(cfg, images, [6]))
    assert not np.array_equal(A.preview(cfg, images, [1]), A.preview(cfg, images, [2]))


def test_preview_equals_build_with_that_seed(images):
    cfg = PRESETS["strong"]
    out = A.preview(cfg, images, [3, 11])
    for k, seed in enumerate([3, 11]):
        ref = np.clip(np.rint(_run(A.build(cfg, seed=seed), images)), 0, 255).astype(np.uint8)
        assert np.array_equal(out[:, k], ref)


@pytest.mark.parametrize("name", ["seed-000", "strong"])
def test_batched_preview_matches_per_seed_reference(images, name):
    a = A.preview(PRESETS[name], images, [0, 1, 2])
    b = A.preview(PRESETS[name], images, [0, 1, 2], batched=False)
    assert np.array_equal(a, b)


def test_photometric_change_keeps_geometry(midtone_images):
    base = AugmentConfig(rotation_deg=30, zoom=0.2, width_shift=0.1, horizontal_flip=True)
    brighter = dataclasses.replace(base, brightness=0.1)
    a = A.preview(base, midtone_images, SEEDS[:6]).astype(int)
    b = A.preview(brighter, midtone_images, SEEDS[:6]).astype(int)
    diff = b - a
    # Same geometric draws: the only change is one brightness offset per image (up to rounding).
    spread = diff.reshape(diff.shape[0], diff.shape[1], -1)
    assert (spread.max(axis=-1) - spread.min(axis=-1)).max() <= 1
    assert np.abs(diff).max() > 1  # the brightness did change something


def test_preview_shape_dtype_and_input_checks(images):
    out = A.preview(PRESETS["seed-000"], images[:2], [0, 1, 2, 3])
    assert out.shape == (2, 4, H, W, 3) and out.dtype == np.uint8
    assert out.min() >= 0 and out.max() <= 255
    assert A.preview(PRESETS["seed-000"], images, []).shape == (3, 0, H, W, 3)
    with pytest.raises(ValueError, match="uint8"):
        A.preview(PRESETS["seed-000"], images.astype("float32"), [0])
    with pytest.raises(ValueError, match="shape"):
        A.preview(PRESETS["seed-000"], images[0], [0])


# --------------------------------------------------------------------------- presets


def test_preset_values():
    s0 = PRESETS["seed-000"]
    assert (s0.rotation_deg, s0.width_shift, s0.height_shift, s0.shear_deg, s0.zoom) == (
        40,
        0.2,
        0.2,
        0.2,
        0.2,
    )
    assert s0.horizontal_flip and not s0.vertical_flip and s0.fill_mode == "nearest"
    assert (s0.brightness, s0.contrast, s0.saturation, s0.hue) == (0, 0, 0, 0)
    assert "degrees" in A.PRESET_NOTES["seed-000"] and "0.2°" in A.PRESET_NOTES["seed-000"]
    s1 = PRESETS["seed-001"]
    assert s1.horizontal_flip and s1.rotation_deg == pytest.approx(0.1 * 360) and s1.zoom == 0.2
    assert s1.width_shift == 0 and s1.shear_deg == 0
    strong = PRESETS["strong"]
    assert not strong.is_identity() and strong.hue > 0 and strong.shear_deg == 10
    assert set(A.PRESET_NOTES) == set(PRESETS)
    assert list(PRESETS)[:2] == ["none", "seed-000"]


# --------------------------------------------------------------------------- JSON and validation


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip_presets(name):
    cfg = PRESETS[name]
    assert AugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert AugmentConfig.from_json(cfg.to_json()) == cfg


def test_json_round_trip_random_configs():
    rng = np.random.default_rng(42)
    for _ in range(20):
        cfg = _random_config(rng)
        assert AugmentConfig.from_json(cfg.to_json()) == cfg


def test_ints_are_normalised_to_float():
    cfg = AugmentConfig.from_dict({"rotation_deg": 40, "fill_value": 128})
    assert isinstance(cfg.rotation_deg, float) and cfg == AugmentConfig(rotation_deg=40.0, fill_value=128.0)
    assert cfg.to_json() == AugmentConfig(rotation_deg=40.0, fill_value=128.0).to_json()


def test_unknown_key_rejected():
    with pytest.raises(ValueError, match="rotation_range"):
        AugmentConfig.from_dict({"rotation_range": 40})


@pytest.mark.parametrize(
    "field, value",
    [
        ("zoom", -0.1),
        ("zoom", 1.0),
        ("rotation_deg", 200),
        ("rotation_deg", -1),
        ("shear_deg", 60),
        ("width_shift", 1.5),
        ("hue", 0.6),
        ("brightness", float("nan")),
        ("contrast", "0.3"),
        ("saturation", True),
        ("fill_value", 300),
        ("fill_mode", "mirror"),
        ("horizontal_flip", "yes"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_error_message_gives_range():
    with pytest.raises(ValueError, match=r"zoom must be between 0 and 0.95, got -0.1"):
        AugmentConfig(zoom=-0.1)


def test_field_specs_have_ui_metadata():
    specs = A.field_specs()
    assert [s["name"] for s in specs] == [f.name for f in dataclasses.fields(AugmentConfig)]
    for s in specs:
        assert s["label"] and s["help"]
        if s["kind"] == "float":
            assert s["min"] < s["max"] and s["step"] > 0 and s["unit"]


# --------------------------------------------------------------------------- build() and to_code()


def _comparable(layer, drop=("name", "seed")) -> tuple[str, dict]:
    cfg = {k: v for k, v in layer.get_config().items() if k not in drop}
    return type(layer).__name__, json.loads(json.dumps(cfg, default=str))


def test_build_layers_match_config():
    model = A.build(PRESETS["seed-000"], seed=0)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["RandomFlip", "RandomAffine"]  # rotation, shifts, shear and zoom: one resampling
    flip, affine = model.layers
    assert flip.mode == "horizontal"
    assert (affine.rotation, affine.width_shift, affine.height_shift) == (40.0, 0.2, 0.2)
    assert (affine.shear, affine.zoom) == (0.2, 0.2)  # degrees, fraction
    assert affine.fill_mode == "nearest" and affine.fill_value == 0.0
    assert [type(x).__name__ for x in A.build(AugmentConfig(zoom=0.1)).layers] == ["RandomAffine"]


def test_build_photometric_factors():
    cfg = AugmentConfig(brightness=0.2, contrast=0.3, saturation=0.3, hue=0.05)
    sat, hue, bright, contrast = A.build(cfg).layers
    lo, hi = sat.factor
    assert lo / (1 - lo) == pytest.approx(0.7) and hi / (1 - hi) == pytest.approx(1.3)
    assert hue.factor == pytest.approx((0, 0.1))  # Keras rotates hue by up to factor / 2
    assert bright.factor == pytest.approx((-0.2, 0.2))
    assert contrast.factor == pytest.approx((0.3, 0.3))  # -> contrast factor in [0.7, 1.3]
    for layer in (sat, hue, bright, contrast):
        assert tuple(layer.value_range) == (0, 255)


def test_build_fill_mode_constant_and_seeds():
    cfg = AugmentConfig(
        rotation_deg=10,
        width_shift=0.1,
        shear_deg=5,
        zoom=0.1,
        vertical_flip=True,
        fill_mode="constant",
        fill_value=128,
    )
    m1, m2, m3 = A.build(cfg, seed=1), A.build(cfg, seed=1), A.build(cfg, seed=2)
    seeds1 = [layer.seed for layer in m1.layers]
    assert len(set(seeds1)) == len(seeds1) and all(isinstance(s, int) for s in seeds1)
    assert seeds1 == [layer.seed for layer in m2.layers]
    assert seeds1 != [layer.seed for layer in m3.layers]
    for layer in m1.layers[1:]:
        assert layer.fill_mode == "constant" and layer.fill_value == 128.0
    assert [layer.seed for layer in A.build(cfg).layers] == [None] * len(seeds1)


@pytest.mark.parametrize(
    "cfg",
    [
        *PRESETS.values(),
        AugmentConfig(
            rotation_deg=12.5,
            width_shift=0.05,
            height_shift=0.3,
            shear_deg=45,
            zoom=0.95,
            horizontal_flip=True,
            vertical_flip=True,
            brightness=1.0,
            contrast=1.0,
            saturation=1.0,
            hue=0.5,
            fill_mode="constant",
            fill_value=7,
        ),
    ],
    ids=[*PRESETS, "everything"],
)
def test_to_code_round_trip(cfg):
    code = A.to_code(cfg)
    compile(code, "<to_code>", "exec")
    ns: dict = {}
    exec(code, ns)
    model = ns["augmentation"]
    assert model.name == "augmentation"
    assert [_comparable(x) for x in model.layers] == [_comparable(x) for x in A.build(cfg).layers]
    if cfg.is_identity():
        assert "no augmentation" in code.lower()
    else:
        ns = {}
        exec(A.to_code(cfg, seed=9), ns)
        assert [_comparable(x, ("name",)) for x in ns["augmentation"].layers] == [
            _comparable(x, ("name",)) for x in A.build(cfg, seed=9).layers
        ]


# --------------------------------------------------------------------------- describe() and sweep()


def test_describe():
    lines = A.describe(PRESETS["seed-000"])
    assert lines == [
        "Flip left-right (half of the time)",
        "Rotate up to ±40°",
        "Shift sideways up to ±20% of the width",
        "Shift up/down up to ±20% of the height",
        "Shear (slant sideways) up to ±0.2°",
        "Zoom in or out up to 20%",
        "Fill uncovered areas: nearest (edge pixels stretched)",
    ]
    assert A.describe(AugmentConfig()) == ["No augmentation"]
    assert A.describe(AugmentConfig(contrast=0.2, fill_mode="constant")) == ["Contrast ×0.8 to ×1.2"]
    assert A.describe(AugmentConfig(zoom=0.1, fill_mode="constant", fill_value=128))[-1] == (
        "Fill uncovered areas: constant (grey level 128)"
    )


def test_every_setting_is_described_once_in_the_layer_table():
    """The table behind build(), to_code() and describe() covers each setting but the fill ones once,
    so a new setting without a layer or a sentence fails here."""
    from core.augment.stack import LAYERS

    covered = [s.field for layer in LAYERS for s in layer.settings]
    fields = [f.name for f in dataclasses.fields(AugmentConfig) if f.metadata["group"] != "fill"]
    assert sorted(covered) == sorted(fields)
    everything = AugmentConfig(
        **{f: (True if isinstance(getattr(AugmentConfig(), f), bool) else 0.1) for f in fields}
    )
    assert len(A.describe(everything)) == len(fields) + 1  # one line per setting, then the fill
    assert not everything.is_identity() and AugmentConfig(fill_mode="wrap").is_identity()


def test_sweep():
    configs = A.sweep(PRESETS["seed-001"], "rotation_deg", [0, 10, 20])
    assert [c.rotation_deg for c in configs] == [0, 10, 20]
    assert all(dataclasses.replace(c, rotation_deg=36.0) == PRESETS["seed-001"] for c in configs)
    with pytest.raises(ValueError, match="rotation_range"):
        A.sweep(PRESETS["none"], "rotation_range", [1])
    with pytest.raises(ValueError, match="zoom"):
        A.sweep(PRESETS["none"], "zoom", [0.1, 2.0])


# --------------------------------------------------------------------------- named configs


def test_save_load_list(tmp_path):
    cfg = AugmentConfig(rotation_deg=15, horizontal_flip=True)
    path = A.save_config("my mild v1.2", cfg, workspace=tmp_path)
    assert path == tmp_path / "augment" / "my mild v1.2.json" and path.exists()
    assert A.load_config("my mild v1.2", workspace=tmp_path) == cfg
    A.save_config("a_other-one", PRESETS["strong"], workspace=tmp_path)
    assert A.list_configs(workspace=tmp_path) == [*PRESETS, "a_other-one", "my mild v1.2"]
    assert A.load_config("strong", workspace=tmp_path) == PRESETS["strong"]
    A.save_config("my mild v1.2", PRESETS["seed-001"], workspace=tmp_path)  # overwrite a saved one: fine
    assert A.load_config("my mild v1.2", workspace=tmp_path) == PRESETS["seed-001"]
    with pytest.raises(KeyError):
        A.load_config("never saved", workspace=tmp_path)
    assert not list((tmp_path / "augment").glob(".*"))  # no temp files left behind


@pytest.mark.parametrize(
    "name", ["", "a/b", "../x", ".hidden", " .hidden", "_under", "-dash", "x" * 65, "semi;colon", "é"]
)
def test_bad_names_rejected(tmp_path, name):
    # One rule for every saved name (core.workspace.check_name): the split store's, which wants a
    # letter or digit first.
    with pytest.raises(ValueError, match="config name .* is not allowed"):
        A.save_config(name, PRESETS["none"], workspace=tmp_path)


def test_names_lose_surrounding_spaces_as_split_names_do(tmp_path):
    A.save_config(" lead", PRESETS["seed-001"], workspace=tmp_path)
    A.save_config("trail ", PRESETS["strong"], workspace=tmp_path)
    assert A.list_configs(workspace=tmp_path) == [*PRESETS, "lead", "trail"]
    assert A.load_config("trail", workspace=tmp_path) == PRESETS["strong"]


@pytest.mark.parametrize("name", ["none", "seed-000", "strong", "Strong"])
def test_preset_names_protected(tmp_path, name):
    with pytest.raises(ValueError, match="preset"):
        A.save_config(name, AugmentConfig(zoom=0.1), workspace=tmp_path)
    assert A.load_config("strong", workspace=tmp_path) == PRESETS["strong"]


@pytest.mark.parametrize("preset", ["seed-000", "strong"])
def test_models_with_augmentation_save_and_load_in_safe_mode(tmp_path, preset):
    """Models holding our augmentation layers load back in safe mode with the same settings."""
    from core.modelfile import load_model

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, A.build(PRESETS[preset], seed=3)(inputs))
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    before = [json.dumps(layer.get_config(), sort_keys=True) for layer in model.layers[1].layers]
    after = [json.dumps(layer.get_config(), sort_keys=True) for layer in loaded.layers[1].layers]
    assert after == before  # (JSON text: a tuple and a list of the same numbers are the same setting)
