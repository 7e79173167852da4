"""Entry script of config/examples/iris.yaml: a scikit-learn classifier scoring a CSV (tabular input).

init() loads the model named "iris" in the config's `models` (a folder holding iris.joblib, which
the iris_model rule writes). run(mini_batch) gets a pandas DataFrame: some consecutive rows of the
CSV, with the file's header and dtypes. It predicts the species from the columns the model was
trained on (other columns, such as the `species` label, are not read, so a CSV without it scores
the same) and returns the same rows, every input column kept, with a `prediction` column added:
one row per input row. With append_row_format csv the merged file is the input CSV plus a
prediction column, in input order, with one header.
"""

import os

import joblib
from snakebatch import EntryScript, Model  # or azureml.core's Model: runs unchanged

model = None


def init():
    global model
    path = os.path.join(Model.get_model_path("iris"), "iris.joblib")
    model = joblib.load(path)
    EntryScript().logger.info("loaded %s (reads columns %s)", path, ", ".join(model.feature_names_in_))


def run(mini_batch):
    features = mini_batch[list(model.feature_names_in_)]
    return mini_batch.assign(prediction=model.predict(features))
