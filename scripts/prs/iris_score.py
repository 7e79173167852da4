# Stand-in for Code/iris_score.py of the Azure ML sample "tabular-dataset-inference-iris"
# (Azure/MachineLearningNotebooks, how-to-use-azureml/machine-learning-pipelines/parallel-run/, MIT
# license), written for snakebatch's tests with the same entry-script contract: it imports
# azureml.core.model.Model and azureml_user.parallel_run.EntryScript, reads --model_name with
# argparse's parse_known_args in init(), unpickles the file Model.get_model_path gives, and run()
# returns the mini-batch's first four columns plus a `variety` column. Nothing in it knows
# snakebatch: it runs here as it runs in ParallelRunStep.
import argparse
import pickle

from azureml.core.model import Model
from azureml_user.parallel_run import EntryScript


def init():
    global iris_model

    EntryScript().logger.info("init() is called.")
    parser = argparse.ArgumentParser(description="Iris model serving")
    parser.add_argument("--model_name", dest="model_name", required=True)
    args, _ = parser.parse_known_args()

    with open(Model.get_model_path(args.model_name), "rb") as model_file:
        iris_model = pickle.load(model_file)


def run(input_data):
    EntryScript().logger.info("run() is called with: {}.".format(input_data))

    rows = input_data.shape[0]
    predictions = iris_model.predict(input_data).reshape((rows, 1))

    result = input_data.drop(input_data.columns[4:], axis=1)
    result["variety"] = predictions
    return result
