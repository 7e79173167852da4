"""Entry script of config/examples/partition-per-column.yaml: statistics per group (partition_keys).

With `partition_keys: [species]` every mini-batch is one whole group: all the rows, from every
input file, with one species, and `mini_batch_context.partition_key_value` says which
({"species": "setosa"}). So run() can compute what needs the whole group at once; here each
flower's petal length against its species' mean.

run() returns one row per input row, every input column kept, plus:
  group_species             the group's key, from mini_batch_context.partition_key_value
  group_rows                rows in the group (= len(mini_batch))
  group_mean_petal_length   the group's mean petal length (cm, 3 decimals)
  petal_length_deviation    this flower's petal length minus that mean (cm, 3 decimals)
One row per input row because snakebatch counts min(len(result), len(mini_batch)) rows as
succeeded: a one-row summary of a 50-row group would count 49 rows as failed. The per-group
summary is one line of pandas over the merged file (see the config's header).
"""

from snakebatch import EntryScript


def init():
    EntryScript().logger.info("per_species: group statistics of petal_length")


def run(mini_batch, mini_batch_context):
    species = mini_batch_context.partition_key_value["species"]   # every row has this species
    mean = mini_batch["petal_length"].mean()
    EntryScript().logger.info("mini-batch %d: %s, %d rows", mini_batch_context.minibatch_index, species,
                              len(mini_batch))
    return mini_batch.assign(
        group_species=species,
        group_rows=len(mini_batch),
        group_mean_petal_length=round(mean, 3),
        petal_length_deviation=(mini_batch["petal_length"] - mean).round(3),
    )
