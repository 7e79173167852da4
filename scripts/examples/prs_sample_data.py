"""Local data for the three Azure ML ParallelRunStep samples in config/examples/ (nothing downloaded).

    python scripts/examples/prs_sample_data.py iris        --out resources/examples/prs-iris
    python scripts/examples/prs_sample_data.py iris-model  --data resources/examples/prs-iris --out resources/examples/prs-iris-model/iris_model.pkl
    python scripts/examples/prs_sample_data.py oj-sales    --out resources/examples/oj-sales
    python scripts/examples/prs_sample_data.py wav-folders --out resources/examples/partition-per-folder

The samples (Azure/MachineLearningNotebooks, how-to-use-azureml/machine-learning-pipelines/
parallel-run/) read data from public blobs; these are local stand-ins of the same shape:

iris: scikit-learn's 150 iris flowers as iris.csv with the four measurement columns the sample's
dataset has (sepal.length, sepal.width, petal.length, petal.width; no label column), in
scikit-learn's order. iris-model: a scikit-learn LogisticRegression (lbfgs, max_iter 1000)
trained on them to predict the variety as scikit-learn's class number (0 setosa, 1 versicolor,
2 virginica), pickled to one file, as the sample's registered model "iris-prs" (iris_model.pkl)
is. Class numbers, not names: the sample's run() sets a column from a (rows, 1) array, which
pandas >= 3 refuses for strings (pandas-dev/pandas#61026). oj-sales: a small synthetic stand-in of
Dominick's orange-juice sales (the sample downloads dominicks_OJ.csv): the same 18 columns, 3
stores x 3 brands x 4 weeks = 36 rows ordered by week, then store, then brand (so every Store and
Brand group is spread over the file), INCOME constant per store and exactly representable in
binary (sums print exactly). wav-folders: the sample's folder layout, dataset_partition_test/
{user}/{season}/{genres}.wav, with the six files its notebook uploads (disco, orchestra, piano,
spirituality; piano three times), each a short 8 kHz 16-bit mono sine tone whose length depends on
the genre, so the file sizes are fixed: disco 1644, orchestra 3244, piano 844, spirituality 2444
bytes. Outputs are written to a temporary sibling and renamed, so a killed build leaves nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import sys
import tempfile
import wave

from snakebatch.storage.atomic import build_folder

IRIS_FILE = "iris.csv"
IRIS_COLUMNS = ["sepal.length", "sepal.width", "petal.length", "petal.width"]

OJ_FILE = "oj.csv"
OJ_COLUMNS = ["WeekStarting", "Quantity", "logQuantity", "Advert", "Price", "Age60", "COLLEGE", "INCOME",
              "Hincome150", "Large HH", "Minorities", "WorkingWoman", "SSTRDIST", "SSTRVOL", "CPDIST5", "CPWVOL5",
              "Store", "Brand"]
OJ_STORES = {2: 10.5, 5: 10.75, 8: 11.25}   # Store -> INCOME (log of median income, as in the data set)
OJ_BRANDS = ["dominicks", "minute.maid", "tropicana"]
OJ_WEEKS = ["1990-06-14", "1990-06-21", "1990-06-28", "1990-07-05"]

# (user, season, genres): the uploads of the sample notebook file-dataset-partition-per-folder.ipynb
WAV_FILES = [("user1", "winter", "disco"), ("user1", "fall", "orchestra"), ("user2", "summer", "piano"),
             ("user3", "fall", "spirituality"), ("user4", "spring", "piano"), ("user4", "fall", "piano")]
WAV_FRAMES = {"disco": 800, "orchestra": 1600, "piano": 400, "spirituality": 1200}   # at 8000 Hz
WAV_RATE = 8000


def iris_frame():
    """The four iris measurements (150 rows, scikit-learn's order) and the class number per row."""
    import pandas as pd
    from sklearn.datasets import load_iris

    iris = load_iris()
    return pd.DataFrame(iris.data, columns=IRIS_COLUMNS), [int(t) for t in iris.target]


def write_iris(out: str) -> None:
    frame, _ = iris_frame()
    build_folder(out, lambda tmp: frame.to_csv(os.path.join(tmp, IRIS_FILE), index=False))
    print(f"iris: {len(frame)} flowers -> {out}/{IRIS_FILE} (columns {', '.join(frame.columns)})")


def write_iris_model(data: str, out: str) -> None:
    """Train on ``data``/iris.csv (labels from scikit-learn) and pickle the model to the file ``out``."""
    import pickle

    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(os.path.join(data, IRIS_FILE))
    _, labels = iris_frame()
    model = LogisticRegression(max_iter=1000).fit(frame[IRIS_COLUMNS], labels)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-iris-model-", dir=os.path.dirname(os.path.abspath(out)))
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(model, handle)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    accuracy = float((model.predict(frame[IRIS_COLUMNS]) == labels).mean())
    print(f"iris model: LogisticRegression on {len(frame)} flowers (accuracy on them {accuracy:.4f}) -> {out}")


def oj_rows() -> list[list]:
    """The rows of the synthetic oj.csv, in file order (week, store, brand)."""
    rows = []
    for w, week in enumerate(OJ_WEEKS):
        for s, (store, income) in enumerate(OJ_STORES.items()):
            for b, brand in enumerate(OJ_BRANDS):
                quantity = 4000 + 1000 * b + 250 * s + 100 * w
                rows.append([week, quantity, round(math.log(quantity), 4), (w + b) % 2, 1.5 + 0.5 * b + 0.25 * w,
                             0.125 + 0.0625 * s, 0.25 + 0.0625 * s, income, 0.375 - 0.0625 * s, 0.125 + 0.0625 * s,
                             0.5 - 0.125 * s, 0.25 + 0.125 * s, 2.5 + s, 1.25 + 0.25 * s, 1.75 + 0.5 * s,
                             0.5 - 0.0625 * s, store, brand])
    return rows


def write_oj_sales(out: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(oj_rows(), columns=OJ_COLUMNS)
    build_folder(out, lambda tmp: frame.to_csv(os.path.join(tmp, OJ_FILE), index=False))
    print(f"oj sales: {len(frame)} rows ({len(OJ_STORES)} stores x {len(OJ_BRANDS)} brands x {len(OJ_WEEKS)} weeks)"
          f" -> {out}/{OJ_FILE}")


def write_wav(path: str, frames: int) -> None:
    """A 440 Hz sine tone of ``frames`` frames, 8 kHz, 16-bit mono: 44 + 2 * frames bytes."""
    samples = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / WAV_RATE)))
                       for i in range(frames))
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(WAV_RATE)
        handle.writeframes(samples)


def write_wav_folders(out: str) -> None:
    def write(tmp):
        for user, season, genres in WAV_FILES:
            folder = os.path.join(tmp, "dataset_partition_test", user, season)
            os.makedirs(folder, exist_ok=True)
            write_wav(os.path.join(folder, f"{genres}.wav"), WAV_FRAMES[genres])

    build_folder(out, write)
    print(f"wav folders: {len(WAV_FILES)} files -> {out}/dataset_partition_test/{{user}}/{{season}}/{{genres}}.wav")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["iris", "iris-model", "oj-sales", "wav-folders"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", help="iris-model: the folder the iris step wrote")
    args = parser.parse_args(argv)
    if args.what == "iris-model" and not args.data:
        parser.error(f"iris-model needs --data (the folder holding {IRIS_FILE})")
    if args.what == "iris":
        write_iris(args.out)
    elif args.what == "iris-model":
        write_iris_model(args.data, args.out)
    elif args.what == "oj-sales":
        write_oj_sales(args.out)
    else:
        write_wav_folders(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
