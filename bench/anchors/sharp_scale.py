"""Pillow decoding at the scale sharp decodes at, so anchors decode as much as Menagerie does.

sharp (0.34, src/pipeline.cc) decodes a JPEG that is to be resized at a reduced DCT scale
("shrink-on-load"): with shrink = min(width / target_w, height / target_h) it picks the
largest of 8, 4, 2 not above shrink, then halves it when shrink is exactly that integer
("known libjpeg rounding errors"). So 512 -> 64 decodes at 1/4 (128x128), not 1/8, and
512 -> 32 at 1/8 (64x64). The rest of the way is its resize kernel, lanczos3 by default.
`Image.draft` asks libjpeg for the same reduced scale; Pillow's LANCZOS is lanczos3.
Menagerie's 'tensorflow' decoder (the reference CNN's, data/preprocess.ts) decodes JPEGs
through TensorFlow's libjpeg at the smallest DCT scale whose shorter side keeps the target
size (1/8 for 512 -> 64, straight to 64x64), then resizes bilinearly if the size is not
already right: its anchors draft at that scale (`draft_like_tensorflow`) and use Pillow's
BILINEAR, a no-op copy when the draft is already the size.
"""

from PIL import Image


def sharp_jpeg_shrink(width, height, target_w, target_h):
    """The DCT scale denominator sharp's shrink-on-load uses for this resize (1, 2, 4 or 8)."""
    shrink = min(width / target_w, height / target_h)
    factor = next((f for f in (8, 4, 2) if shrink >= f), 1)
    if factor > 1 and int(shrink) == factor:
        factor //= 2
    return factor


def tensorflow_dct_scale(width, height, size):
    """The DCT scale of the 'tensorflow' decoder: `dctScaleFor` in data/tensorflow-pixels.ts."""
    shorter = min(width, height)
    return next((s for s in (8, 4, 2) if -(-shorter // s) >= size), 1)


def draft_like_tensorflow(im, size):
    """Calls `im.draft` so a JPEG decodes at the 'tensorflow' decoder's scale; no-op otherwise."""
    if im.format != "JPEG":
        return
    scale = tensorflow_dct_scale(im.width, im.height, size)
    if scale > 1:
        im.draft("RGB", (-(-im.width // scale), -(-im.height // scale)))


def draft_like_sharp(im, target_w, target_h):
    """Calls `im.draft` so a JPEG decodes at sharp's scale for this resize; no-op otherwise."""
    if im.format != "JPEG":
        return
    factor = sharp_jpeg_shrink(im.width, im.height, target_w, target_h)
    if factor > 1:
        # draft picks the largest scale whose result is at least the size asked for.
        im.draft("RGB", (im.width // factor, im.height // factor))
