# Data and models of the example configs in config/examples/ (iris.yaml, partition-per-column.yaml,
# and the Azure ML samples prs-iris.yaml, prs-partition-per-column.yaml, prs-partition-per-folder.yaml):
# scikit-learn's iris data as a CSV, the same rows dealt into three CSV files, and a scikit-learn
# classifier trained on the CSV. Built only when the config points at these paths and they are
# missing; nothing is downloaded (scripts/examples/example_data.py).

EXAMPLE_IRIS = "resources/examples/iris"
EXAMPLE_IRIS_PARTS = "resources/examples/iris-parts"
EXAMPLE_IRIS_MODEL = "resources/examples/iris-model"
EXAMPLES = RUN.script("scripts", "examples", "example_data.py")
RUN.add_produced_paths(EXAMPLE_IRIS, EXAMPLE_IRIS_PARTS, EXAMPLE_IRIS_MODEL)

# the Azure ML ParallelRunStep samples' stand-in data (scripts/examples/prs_sample_data.py)
PRS_IRIS = "resources/examples/prs-iris"
PRS_IRIS_MODEL = "resources/examples/prs-iris-model/iris_model.pkl"
PRS_OJ_SALES = "resources/examples/oj-sales"
PRS_WAV_FOLDERS = "resources/examples/partition-per-folder"
PRS_DATA = RUN.script("scripts", "examples", "prs_sample_data.py")
RUN.add_produced_paths(PRS_IRIS, PRS_IRIS_MODEL, PRS_OJ_SALES, PRS_WAV_FOLDERS)


rule iris_data:
    output:
        directory(EXAMPLE_IRIS),
    log:
        "resources/examples/logs/iris_data.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{EXAMPLES} iris --out {{output:q}} 2>&1 | tee {{log:q}}"


rule iris_parts:
    input:
        EXAMPLE_IRIS,
    output:
        directory(EXAMPLE_IRIS_PARTS),
    log:
        "resources/examples/logs/iris_parts.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{EXAMPLES} iris-parts --data {{input:q}} --out {{output:q}} 2>&1 | tee {{log:q}}"


rule iris_model:
    input:
        EXAMPLE_IRIS,
    output:
        directory(EXAMPLE_IRIS_MODEL),
    log:
        "resources/examples/logs/iris_model.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{EXAMPLES} iris-model --data {{input:q}} --out {{output:q}} 2>&1 | tee {{log:q}}"


rule prs_iris_data:
    output:
        directory(PRS_IRIS),
    log:
        "resources/examples/logs/prs_iris_data.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{PRS_DATA} iris --out {{output:q}} 2>&1 | tee {{log:q}}"


rule prs_iris_model:
    input:
        PRS_IRIS,
    output:
        PRS_IRIS_MODEL,
    log:
        "resources/examples/logs/prs_iris_model.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{PRS_DATA} iris-model --data {{input:q}} --out {{output:q}} 2>&1 | tee {{log:q}}"


rule oj_sales_data:
    output:
        directory(PRS_OJ_SALES),
    log:
        "resources/examples/logs/oj_sales_data.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{PRS_DATA} oj-sales --out {{output:q}} 2>&1 | tee {{log:q}}"


rule wav_folders:
    output:
        directory(PRS_WAV_FOLDERS),
    log:
        "resources/examples/logs/wav_folders.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f"{PRS_DATA} wav-folders --out {{output:q}} 2>&1 | tee {{log:q}}"
