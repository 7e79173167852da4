from snakebatch.infer.entry import Model  # noqa: F401  (ParallelRunStep compatibility: azureml.core.model.Model)
