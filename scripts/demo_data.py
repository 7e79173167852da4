"""The bundled demo's data, model and score (the seed's MNIST walk-through, with no download).

    python scripts/demo_data.py images   --out resources/demo/mnist
    python scripts/demo_data.py model    --out resources/demo/model
    python scripts/demo_data.py tf1-model --out resources/demo/model-tf1
    python scripts/demo_data.py accuracy --results R --labels L --out A

images: scikit-learn's UCI handwritten digits (1,797 8x8 images, 0-16) scaled to 28x28 grayscale
PNG files like MNIST (digit in the middle 20x20, 4-pixel black border), the test split as
{i}.png plus labels.csv (file,label). model: a Keras MLP 784-300-100-10 trained on the train split,
saved as mnist.keras. tf1-model: the same MLP as a TensorFlow 1-style checkpoint, for the seed's
own entry script (scripts/prs/): mnist-tf.model.{meta,index,data-*} plus `checkpoint`, input
placeholder network/X:0 ([None, 784] float32, raw 0-255 pixels, as the seed feeds them: the graph
scales them itself) and logits network/output/MatMul:0 (the output layer has no bias, so the
MatMul is the whole logit). accuracy: the share of "<file>: <digit>" result lines that match
labels.csv.
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

from snakebatch.storage.atomic import publish_folder

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
    publish_folder(tmp, out)
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
    publish_folder(tmp, out)
    print(f"demo model: MLP 784-300-100-10 trained on {len(x_train)} digits "
          f"(held-out accuracy {test_accuracy:.4f}) -> {out}/mnist.keras")


def _tf1_mlp(tf):
    """The inference graph in the default graph: network/X:0 -> network/output/MatMul:0.

    Returns (X, logits, variables). The variables start He-initialised with fixed seeds; the
    output layer has no bias, so the seed's MatMul tensor is the whole logit.
    """
    sizes = [784, 300, 100, 10]
    variables = []
    with tf.name_scope("network"):
        x = tf.placeholder(tf.float32, shape=[None, 784], name="X")
        layer = x * (1.0 / 255.0)  # the seed feeds raw 0-255 pixels
        for i, (scope, n_in, n_out) in enumerate(zip(["hidden1", "hidden2", "output"], sizes, sizes[1:])):
            with tf.name_scope(scope):
                w = tf.Variable(tf.random.normal([n_in, n_out], stddev=(2.0 / n_in) ** 0.5, seed=SEED + i),
                                name="W")
                layer = tf.matmul(layer, w)
                variables.append(w)
                if scope != "output":
                    b = tf.Variable(tf.zeros([n_out]), name="b")
                    layer = tf.nn.relu(layer + b)
                    variables.append(b)
    return x, layer, variables


def train_tf1_model(out: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    x_train, x_test, y_train, y_test = split()
    x_train = x_train.reshape(-1, 784).astype(np.float32)  # raw 0-255, as the seed's script feeds
    x_test = x_test.reshape(-1, 784).astype(np.float32)
    rng = np.random.RandomState(SEED)

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-demo-model-tf1-", dir=parent)
    prefix = os.path.join(tmp, "mnist-tf.model")
    try:
        # Train in one graph and save its weights (index, data, checkpoint)...
        with tf.Graph().as_default():
            tf.set_random_seed(SEED)
            x, logits, variables = _tf1_mlp(tf)
            y = tf.placeholder(tf.int64, shape=[None], name="y")
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            train_op = tf.train.AdamOptimizer(learning_rate=1e-3).minimize(loss)
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                for _ in range(20):
                    order = rng.permutation(len(x_train))
                    for start in range(0, len(order), 32):
                        batch = order[start:start + 32]
                        sess.run(train_op, feed_dict={x: x_train[batch], y: y_train[batch]})
                tf.train.Saver(var_list=variables, save_relative_paths=True).save(
                    sess, prefix, write_meta_graph=False)
        # ... and the meta graph of a clean copy of the inference graph (no optimizer ops or state).
        with tf.Graph().as_default():
            tf.set_random_seed(SEED)
            _tf1_mlp(tf)
            tf.train.Saver(save_relative_paths=True).export_meta_graph(prefix + ".meta")

        # Score it the way the seed's script loads it: import_meta_graph, restore, raw pixels.
        with tf.Graph().as_default():
            saver = tf.train.import_meta_graph(prefix + ".meta")
            with tf.Session() as sess:
                saver.restore(sess, prefix)
                logits = sess.run("network/output/MatMul:0", feed_dict={"network/X:0": x_test})
        test_accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_folder(tmp, out)
    print(f"demo TF1 model: MLP 784-300-100-10 trained on {len(x_train)} digits "
          f"(held-out accuracy {test_accuracy:.4f}) -> {out}/mnist-tf.model")


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
    parser.add_argument("what", choices=["images", "model", "tf1-model", "accuracy"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--results")
    parser.add_argument("--labels")
    args = parser.parse_args(argv)
    if args.what == "images":
        write_images(args.out)
    elif args.what == "model":
        train_model(args.out)
    elif args.what == "tf1-model":
        train_tf1_model(args.out)
    else:
        score(args.results, args.labels, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
