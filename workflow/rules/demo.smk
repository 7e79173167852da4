# The bundled demo (the seed's MNIST walk-through): scikit-learn's handwritten digits written as
# 28x28 PNG files, and a Keras model trained on the other split (plus the same MLP as a TensorFlow
# 1-style checkpoint for the seed's own script, config/examples/mnist-prs.yaml). Built only when the
# config points at these paths and they are missing; nothing is downloaded. What a job prints on
# stdout (one line) goes to the console and its log; its stderr (TensorFlow's start-up chatter)
# to the log only, which a failed run's report shows.

from snakebatch.settings.demo import DEMO_IMAGES, DEMO_MODEL, DEMO_TF1_MODEL

DEMO = RUN.script("scripts", "demo_data.py")
RUN.add_produced_paths(DEMO_IMAGES, DEMO_MODEL, DEMO_TF1_MODEL)


rule demo_images:
    output:
        directory(DEMO_IMAGES),
    log:
        "resources/demo/logs/demo_images.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f": > {{log:q}}; {DEMO} images --out {{output:q}} 2>> {{log:q}} | tee -a {{log:q}}"


rule demo_model:
    output:
        directory(DEMO_MODEL),
    log:
        "resources/demo/logs/demo_model.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f": > {{log:q}}; {DEMO} model --out {{output:q}} 2>> {{log:q}} | tee -a {{log:q}}"


rule demo_tf1_model:
    output:
        directory(DEMO_TF1_MODEL),
    log:
        "resources/demo/logs/demo_tf1_model.log",
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f": > {{log:q}}; {DEMO} tf1-model --out {{output:q}} 2>> {{log:q}} | tee -a {{log:q}}"


rule demo_accuracy:
    input:
        results=RUN.merged_output(),
        images=DEMO_IMAGES,
    output:
        LAYOUT.demo_accuracy,
    log:
        LAYOUT.stage_log("demo_accuracy"),
    conda:
        "../envs/snakebatch.yaml"
    shell:
        f": > {{log:q}}; {DEMO} accuracy --results {{input.results:q}}"
        " --labels {input.images:q}/labels.csv --out {output:q} 2>> {log:q} | tee -a {log:q}"
