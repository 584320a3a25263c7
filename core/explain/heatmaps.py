"""Heatmaps as pictures: upsampled, coloured with a colormap, laid over the image."""

from __future__ import annotations

import cv2
import numpy as np


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Heatmap (h, w) -> (H, W) float32 with bilinear interpolation (cv2.resize); size = (H, W)."""
    height, width = size
    return cv2.resize(np.asarray(heatmap, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def heat_image(
    heatmap: np.ndarray, size: tuple[int, int] | None = None, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """The coloured map alone: heatmap (h, w) in [0, 1] -> RGB uint8 (h, w, 3), or (H, W, 3) for `size`."""
    heat = upsample(heatmap, size) if size is not None else np.asarray(heatmap, dtype=np.float32)
    coloured = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0.0, 1.0)), colormap)  # BGR
    return cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Image (H, W, 3) uint8 RGB + heatmap (h, w) in [0, 1] -> (H, W, 3) uint8, the seeds' way.

    The seed (Deep Learning with Python): heatmap resized to the image, np.uint8(255 * heatmap),
    cv2.applyColorMap(JET) (BGR; converted to RGB here), superimposed = heat * 0.4 + image, saved with
    saturation. Here: round(heat * alpha + image) clipped to 0..255 (bright parts saturate, as there).
    """
    image = np.asarray(image)
    heat = heat_image(heatmap, size=image.shape[:2], colormap=colormap).astype(np.float32)
    return np.clip(np.rint(heat * alpha + image.astype(np.float32)), 0, 255).astype(np.uint8)
