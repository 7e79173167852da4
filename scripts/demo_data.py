"""The bundled demo's data, model and score (the seed's MNIST walk-through, with no download).

    python scripts/demo_data.py images   --out resources/demo/mnist
    python scripts/demo_data.py model    --out resources/demo/model
    python scripts/demo_data.py accuracy --results R --labels L --out A

images: scikit-learn's UCI handwritten digits (1,797 8x8 images, 0-16) scaled to 28x28 grayscale
PNG files like MNIST (digit in the middle 20x20, 4-pixel black border), the test split as
{i}.png plus labels.csv (file,label). model: a Keras MLP 784-300-100-10 trained on the train split,
saved as mnist.keras. accuracy: the share of "<file>: <digit>" result lines that match labels.csv.
Folders are written to a temporary sibling and renamed, so a killed build leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

SEED = 0
TEST_SIZE = 0.25


def to_mnist_pixels(digit_8x8: np.ndarray) -> np.ndarray:
    """One 8x8 digit (values 0-16) as a 28x28 uint8 image: scaled to 20x20, 4-pixel border."""
    from PIL import Image

    small = Image.fromarray(np.clip(digit_8x8 * (255.0 / 16.0), 0, 255).astype(np.uint8), mode="L")
    canvas = np.zeros((28, 28), dtype=np.uint8)
    canvas[4:24, 4:24] = np.asarray(small.resize((20, 20), Image.BILINEAR))
    return canvas


def split():
    """(x_train, x_test, y_train, y_test) of the digits as 28x28 uint8 images, fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.stack([to_mnist_pixels(d) for d in digits.images])
    return train_test_split(images, digits.target, test_size=TEST_SIZE, random_state=SEED,
                            stratify=digits.target)


def _publish(tmp: str, out: str) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)


def write_images(out: str) -> None:
    from PIL import Image

    _, x_test, _, y_test = split()
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-demo-images-", dir=parent)
    with open(os.path.join(tmp, "labels.csv"), "w", encoding="utf-8") as labels:
        labels.write("file,label\n")
        for i, (pixels, label) in enumerate(zip(x_test, y_test)):
            Image.fromarray(pixels, mode="L").save(os.path.join(tmp, f"{i}.png"))
            labels.write(f"{i}.png,{label}\n")
    _publish(tmp, out)
    print(f"demo images: {len(x_test)} test digits as 28x28 PNG in {out}/ (labels in {out}/labels.csv)")


def train_model(out: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    x_train, x_test, y_train, y_test = split()
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(300, activation="relu"),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train.reshape(-1, 784) / 255.0, y_train, epochs=20, batch_size=32, verbose=0)
    _, test_accuracy = model.evaluate(x_test.reshape(-1, 784) / 255.0, y_test, verbose=0)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-demo-model-", dir=parent)
    model.save(os.path.join(tmp, "mnist.keras"))
    _publish(tmp, out)
    print(f"demo model: MLP 784-300-100-10 trained on {len(x_train)} digits "
          f"(held-out accuracy {test_accuracy:.4f}) -> {out}/mnist.keras")


def score(results: str, labels: str, out: str) -> None:
    import pandas as pd

    predictions = pd.read_csv(results, delimiter=":", header=None, names=["file", "prediction"])
    truth = pd.read_csv(labels)
    joined = predictions.merge(truth, on="file", how="inner")
    correct = int((joined["prediction"] == joined["label"]).sum())
    accuracy = correct / len(joined) if len(joined) else 0.0
    report = {"results": results, "scored": len(joined), "correct": correct, "accuracy": round(accuracy, 4)}
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, out)
    print(f"demo accuracy: {accuracy:.4f} ({correct} of {len(joined)} digits right) -> {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["images", "model", "accuracy"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--results")
    parser.add_argument("--labels")
    args = parser.parse_args(argv)
    if args.what == "images":
        write_images(args.out)
    elif args.what == "model":
        train_model(args.out)
    else:
        score(args.results, args.labels, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
