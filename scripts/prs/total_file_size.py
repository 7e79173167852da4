# Stand-in for Code/total_file_size.py of the Azure ML sample "file-dataset-partition-per-folder"
# (Azure/MachineLearningNotebooks, how-to-use-azureml/machine-learning-pipelines/parallel-run/, MIT
# license), written for snakebatch's tests with the same entry-script contract: one mini-batch per
# (user, genres) combination of a file dataset with partition_format
# "dataset_partition_test/{user}/{season}/{genres}.wav"; run(mini_batch, mini_batch_context) prints
# mini_batch_context.partition_key_value and mini_batch_context.dataset, and returns one line per
# file: name, size, share of the mini-batch's bytes, user, genres, the mini-batch's total bytes.
import os


def init():
    print("Init")


def run(mini_batch, mini_batch_context):
    print(f"run method start: {__file__}, run({mini_batch}, {mini_batch_context})")
    # partition_key_value: {key: value} for the keys in partition_keys
    print(f"partition_key_value = {mini_batch_context.partition_key_value}")
    # dataset: the part of the input dataset this mini-batch is (filtered by partition_key_value)
    print(f"dataset = {mini_batch_context.dataset}")

    print(f"file_count_of_mini_batch = {len(mini_batch)}")
    names = [os.path.basename(path) for path in mini_batch]
    sizes = [os.path.getsize(path) for path in mini_batch]
    total = sum(sizes)
    print(f"total_file_size_of_mini_batch = {total}")
    ratios = [size * 1.0 / total for size in sizes]

    user = mini_batch_context.partition_key_value["user"]
    genres = mini_batch_context.partition_key_value["genres"]
    # append_row with a file dataset: one element per file, written with str(); a string keeps its format
    return [",".join(str(x) for x in (name, size, ratio, user, genres, total))
            for name, size, ratio in zip(names, sizes, ratios)]
