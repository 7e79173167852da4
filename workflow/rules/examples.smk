# Data and models of the example configs in config/examples/ (iris.yaml, partition-per-column.yaml):
# scikit-learn's iris data as a CSV, the same rows dealt into three CSV files, and a scikit-learn
# classifier trained on the CSV. Built only when the config points at these paths and they are
# missing; nothing is downloaded (scripts/examples/example_data.py).

EXAMPLE_IRIS = "resources/examples/iris"
EXAMPLE_IRIS_PARTS = "resources/examples/iris-parts"
EXAMPLE_IRIS_MODEL = "resources/examples/iris-model"
EXAMPLES_SCRIPT = os.path.join(REPO_DIR, "scripts", "examples", "example_data.py")
EXAMPLES = f"{PYTHON} {shlex.quote(EXAMPLES_SCRIPT)}"

PRODUCED_PATHS.extend([EXAMPLE_IRIS, EXAMPLE_IRIS_PARTS, EXAMPLE_IRIS_MODEL])


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
