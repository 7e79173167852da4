"""Entry script of the bundled demo: the seed's digit_identification.py for a Keras model.

init() loads the model named "mnist" in the config's `models`; run(mini_batch) reads the
mini-batch's PNG files (28x28 grayscale), predicts them in one call and returns one
"<file name>: <digit>" string per image, in mini-batch order.
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


def run(mini_batch):
    images = np.stack([
        np.asarray(Image.open(path).convert("L"), dtype=np.float32).reshape(784) / 255.0
        for path in mini_batch
    ])
    digits = np.argmax(model(images, training=False).numpy(), axis=1)
    return [f"{os.path.basename(path)}: {digit}" for path, digit in zip(mini_batch, digits)]
