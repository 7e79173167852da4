"""Entry script of the bundled demo: the seed's digit_identification.py for a Keras model.

init() loads the model named "mnist" in the config's `models`; run(mini_batch) reads the
mini-batch's PNG files (28x28 grayscale), predicts them in one call and returns one
"<file name>: <digit>" string per image, in mini-batch order. An image of another mode (RGB, RGBA,
palette, 16-bit) is converted to grayscale and one of another size resized to 28x28; a file that
is not a readable image (truncated, empty, text named .png) raises ValueError naming its path, so
snakebatch's bisection fails that file alone, with the reason in errors.jsonl.
"""

import argparse
import os

import numpy as np
from PIL import Image

from snakebatch import EntryScript, Model

model = None


def init():
    global model
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-file", default="mnist.keras")
    args, _ = parser.parse_known_args()
    path = os.path.join(Model.get_model_path("mnist"), args.model_file)
    model = keras.models.load_model(path)
    EntryScript().logger.info("loaded %s", path)


def load_digit(path):
    """The image at ``path`` as 784 floats in [0, 1] (28x28 grayscale, row by row). Raises
    ValueError naming the path when it is not a readable image."""
    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except (OSError, SyntaxError, ValueError) as exc:   # PIL: UnidentifiedImageError, truncated data
        raise ValueError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    if gray.size != (28, 28):
        gray = gray.resize((28, 28), Image.Resampling.LANCZOS)
    return np.asarray(gray, dtype=np.float32).reshape(784) / 255.0


def run(mini_batch):
    images = np.stack([load_digit(path) for path in mini_batch])
    digits = np.argmax(model(images, training=False).numpy(), axis=1)
    return [f"{os.path.basename(path)}: {digit}" for path, digit in zip(mini_batch, digits)]
