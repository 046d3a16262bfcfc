"""The camera's view of the painted canvas: time-of-day lighting and sensor noise.

Turns the canvas's image into the final RGB image: dims everything that does not emit light for
dawn/dusk and night, brightens the near ground under the ego car's headlights at night, and adds
mild noise. Reads the image and the light map; writes no label map.
"""
import cv2
import numpy as np

# Per-channel brightness of everything that does not emit light.
_GAIN = {"daytime": (1.0, 1.0, 1.0), "dawn/dusk": (0.85, 0.7, 0.62), "night": (0.3, 0.3, 0.38)}
_NOISE_OFFSET = 16


def finish(canvas, road, rng, time):
    """The final HxWx3 uint8 RGB image: lighting for ``time`` (things that emit light keep their
    colour; at night the ego car's headlights brighten the near ground) and mild sensor noise."""
    return _add_noise(_light(canvas, road, time), rng)


def _light(canvas, road, time):
    """A copy of the canvas's image lit for ``time``; pixels that emit light keep their colour."""
    gain = np.diag(_GAIN[time]).astype(np.float32)
    lit = canvas.img.copy()
    if time != "daytime":
        # Bands of rows of constant gain: cv2.transform is many times cheaper than float maps.
        for band in np.array_split(np.arange(canvas.height), min(canvas.height, 48)):
            near = min(max((road.s_of_row(band.mean()) - 0.45) / 0.55, 0.0), 1.0)
            boost = 1 + 1.6 * near ** 1.5 if time == "night" else 1.0
            window = slice(band[0], band[-1] + 1)
            lit[window] = cv2.transform(canvas.img[window], gain * boost)
        cv2.copyTo(canvas.img, canvas.emit, lit)
    return lit


def _add_noise(image, rng):
    """``image`` (HxWx3 uint8) plus smooth blotches and fine grain, saturated to 0..255."""
    height, width = image.shape[:2]
    # Grain comes from raw bytes (cheap); the noise is added with an offset because OpenCV's
    # saturating add needs unsigned values.
    blotch = rng.standard_normal((height // 16 + 2, width // 16 + 2)).astype(np.float32) * 5
    noise = cv2.resize(blotch, (width, height), interpolation=cv2.INTER_LINEAR)
    grain = np.frombuffer(rng.bytes(height * width), np.uint8).reshape(height, width) & 7
    noise = np.clip(noise + grain + (_NOISE_OFFSET - 3.0), 0, 2 * _NOISE_OFFSET).astype(np.uint8)
    lit = cv2.add(image, cv2.merge([noise] * 3))
    return cv2.subtract(lit, (_NOISE_OFFSET,) * 3 + (0,))
