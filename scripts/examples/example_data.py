"""Data and models of the example configs in config/examples/ (no download: scikit-learn ships them).

    python scripts/examples/example_data.py iris       --out resources/examples/iris
    python scripts/examples/example_data.py iris-parts --data resources/examples/iris --out resources/examples/iris-parts
    python scripts/examples/example_data.py iris-model --data resources/examples/iris --out resources/examples/iris-model

iris: scikit-learn's iris data (150 flowers, in scikit-learn's order: 50 setosa, 50 versicolor,
50 virginica) as iris.csv with the columns sepal_length, sepal_width, petal_length, petal_width
(cm) and species (the label, a name; the classifier does not read it, it is there to score the
predictions). iris-parts: the same rows with an `id` column first (the row's position in
iris.csv), shuffled with a fixed seed and dealt round-robin into part-1.csv, part-2.csv and
part-3.csv (50 rows each; every species in every file, interleaved), for partition_keys.
iris-model: a scikit-learn pipeline (StandardScaler + LogisticRegression, fixed seed) trained on
the four measurements of iris.csv to predict `species`, saved with joblib as iris.joblib.
Folders are written to a temporary sibling and renamed, so a killed build leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import sys

from snakebatch.storage.atomic import build_folder

SEED = 0
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"
IRIS_FILE = "iris.csv"
MODEL_FILE = "iris.joblib"
PARTS = 3


def iris_frame():
    """scikit-learn's iris data as a DataFrame: the four measurements and the species name."""
    import pandas as pd
    from sklearn.datasets import load_iris

    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=FEATURES)
    frame[LABEL] = [str(iris.target_names[t]) for t in iris.target]
    return frame


def read_iris(data: str):
    import pandas as pd

    return pd.read_csv(os.path.join(data, IRIS_FILE))


def write_iris(out: str) -> None:
    frame = iris_frame()
    build_folder(out, lambda tmp: frame.to_csv(os.path.join(tmp, IRIS_FILE), index=False))
    print(f"iris: {len(frame)} flowers -> {out}/{IRIS_FILE} (columns {', '.join(frame.columns)})")


def write_iris_parts(data: str, out: str) -> None:
    import numpy as np

    frame = read_iris(data)
    frame.insert(0, "id", range(len(frame)))
    shuffled = frame.iloc[np.random.RandomState(SEED).permutation(len(frame))]

    def write(tmp):
        for part in range(PARTS):
            shuffled.iloc[part::PARTS].to_csv(os.path.join(tmp, f"part-{part + 1}.csv"), index=False)

    build_folder(out, write)
    print(f"iris parts: {len(frame)} flowers (shuffled, seed {SEED}) dealt round-robin into "
          f"{', '.join(f'part-{p + 1}.csv' for p in range(PARTS))} in {out}/")


def train_iris_model(data: str, out: str) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = read_iris(data)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(frame[FEATURES], frame[LABEL])  # a DataFrame: the model keeps the column names
    accuracy = float((model.predict(frame[FEATURES]) == frame[LABEL]).mean())
    build_folder(out, lambda tmp: joblib.dump(model, os.path.join(tmp, MODEL_FILE)))
    print(f"iris model: StandardScaler + LogisticRegression trained on {len(frame)} flowers "
          f"(accuracy on them {accuracy:.4f}) -> {out}/{MODEL_FILE}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["iris", "iris-parts", "iris-model"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", help="the folder the iris step wrote (iris-parts, iris-model)")
    args = parser.parse_args(argv)
    if args.what != "iris" and not args.data:
        parser.error(f"{args.what} needs --data (the folder holding {IRIS_FILE})")
    if args.what == "iris":
        write_iris(args.out)
    elif args.what == "iris-parts":
        write_iris_parts(args.data, args.out)
    else:
        train_iris_model(args.data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
