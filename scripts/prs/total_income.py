# Stand-in for Code/total_income.py of the Azure ML sample "tabular-dataset-partition-per-column"
# (Azure/MachineLearningNotebooks, how-to-use-azureml/machine-learning-pipelines/parallel-run/, MIT
# license), written for snakebatch's tests with the same entry-script contract: one mini-batch per
# (Store, Brand) group, run(mini_batch) prints what it got and returns the group's rows with a
# `total_income` column, the sum of the group's INCOME.


def init():
    print("Init")


def run(mini_batch):
    print(f"run method start: {__file__}, run({mini_batch})")
    total_income = mini_batch["INCOME"].sum()
    print(f"total_income = {total_income}")
    mini_batch["total_income"] = total_income
    return mini_batch
