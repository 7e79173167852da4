"""input.partition_format (snakebatch.kinds.files.partition_format) and the file kind's mini-batches per
partition_keys combination: ParallelRunStep's partition per folder, on the layout of the Azure ML
sample file-dataset-partition-per-folder, on the local disk and on fsspec's memory:// store."""

import os
import uuid

import fsspec
import pytest

from helpers import partition_spec, write
from snakebatch.infer.entry import MiniBatchDataset
from snakebatch.errors import ConfigError, DatasetError
from snakebatch.kinds import get_kind
from snakebatch.kinds.files.kind import mini_batch_key
from snakebatch.kinds.files.partition_format import PartitionFormat, dataset_root, key_groups, relative_path

FILES = get_kind("file")
SAMPLE_FORMAT = "dataset_partition_test/{user}/{season}/{genres}.wav"
# the uploads of the sample's notebook: (user, season, genres)
SAMPLE = [("user1", "winter", "disco"), ("user1", "fall", "orchestra"), ("user2", "summer", "piano"),
          ("user3", "fall", "spirituality"), ("user4", "spring", "piano"), ("user4", "fall", "piano")]


def sample_dataset(root):
    for user, season, genres in SAMPLE:
        write(os.path.join(root, "dataset_partition_test", user, season, f"{genres}.wav"), f"{user}-{season}")
    return str(root)


def spec(paths, partition_format=SAMPLE_FORMAT, partition_keys=("user", "genres"), size=10, pattern=None):
    return partition_spec(list(paths), size, run_name="t", pattern=pattern, partition_format=partition_format,
                          partition_keys=tuple(partition_keys))


def test_a_format_parses_into_its_fields_and_matches_whole_relative_paths_only():
    fmt = PartitionFormat.parse(SAMPLE_FORMAT)
    assert fmt.fields == ("user", "season", "genres")
    assert fmt.values("dataset_partition_test/user1/winter/disco.wav") == {
        "user": "user1", "season": "winter", "genres": "disco"}
    assert fmt.values("dataset_partition_test/user1/winter/disco.mp3") is None
    assert fmt.values("dataset_partition_test/user1/a/winter/disco.wav") is None   # a field holds no "/"
    assert fmt.values("x/dataset_partition_test/user1/winter/disco.wav") is None   # anchored at the root
    assert PartitionFormat.parse("{day}-{hour}.log").values("2024.05.01-17.log") == {"day": "2024.05.01",
                                                                                        "hour": "17"}


def test_dataset_root_is_the_folder_before_a_glob_or_a_files_folder(tmp_path):
    folder = sample_dataset(tmp_path / "ds")
    one = os.path.join(folder, "dataset_partition_test", "user1", "winter", "disco.wav")
    assert dataset_root(folder + "/") == folder
    assert dataset_root(folder + "/dataset_partition_test/*/*/*.wav") == folder + "/dataset_partition_test"
    assert dataset_root(one) == os.path.dirname(one)
    assert dataset_root("az://container/data/") == "az://container/data"
    assert relative_path(one, [folder]) == "dataset_partition_test/user1/winter/disco.wav"
    assert relative_path(one, ["elsewhere", folder]) == "dataset_partition_test/user1/winter/disco.wav"
    assert relative_path("az://container/data/a/b.wav", ["az://container/data/"]) == "a/b.wav"
    assert relative_path("az://container/other/b.wav", ["az://container/data/"]) is None


def test_one_mini_batch_per_key_combination_in_sorted_key_order_files_in_listing_order(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    s = spec([root])
    listing = list(FILES.list(s))
    batches = FILES.mini_batches(listing, s)
    base = os.path.join(root, "dataset_partition_test")
    assert [(b.index, b.first_item, b.count, b.payload) for b in batches] == [
        (0, 0, 1, {"items": [f"{base}/user1/winter/disco.wav"], "partition_key_value": {"user": "user1",
                                                                                          "genres": "disco"}}),
        (1, 1, 1, {"items": [f"{base}/user1/fall/orchestra.wav"], "partition_key_value": {"user": "user1",
                                                                                            "genres": "orchestra"}}),
        (2, 2, 1, {"items": [f"{base}/user2/summer/piano.wav"], "partition_key_value": {"user": "user2",
                                                                                          "genres": "piano"}}),
        (3, 3, 1, {"items": [f"{base}/user3/fall/spirituality.wav"],
                   "partition_key_value": {"user": "user3", "genres": "spirituality"}}),
        (4, 4, 2, {"items": [f"{base}/user4/fall/piano.wav", f"{base}/user4/spring/piano.wav"],
                   "partition_key_value": {"user": "user4", "genres": "piano"}}),
    ]
    assert [FILES.partition_key_value(b) for b in batches][4] == {"user": "user4", "genres": "piano"}
    assert FILES.cut_description(s) == ("one mini-batch per value of user, genres "
                                        "(partition_format 'dataset_partition_test/{user}/{season}/{genres}.wav')")
    # mini_batch_size does not split a group
    assert [b.count for b in FILES.mini_batches(listing, spec([root], size=1))] == [1, 1, 1, 1, 2]


def test_a_single_key_groups_across_folders_and_a_glob_root_reads_its_own_relative_paths(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    s = spec([root], partition_keys=["genres"])
    assert [(FILES.partition_key_value(b), b.count) for b in FILES.mini_batches(list(FILES.list(s)), s)] == [
        ({"genres": "disco"}, 1), ({"genres": "orchestra"}, 1), ({"genres": "piano"}, 3),
        ({"genres": "spirituality"}, 1)]
    glob_spec = spec([root + "/dataset_partition_test/*/*/*.wav"], partition_format="{user}/{season}/{genres}.wav",
                     partition_keys=["season"])
    assert [(FILES.partition_key_value(b), b.count) for b in FILES.mini_batches(list(FILES.list(glob_spec)),
                                                                                glob_spec)] == [
        ({"season": "fall"}, 3), ({"season": "spring"}, 1), ({"season": "summer"}, 1), ({"season": "winter"}, 1)]


def test_a_file_that_does_not_match_the_format_is_an_error_naming_it_at_listing(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    stray = write(os.path.join(root, "dataset_partition_test", "user1", "notes.txt"), "x")
    with pytest.raises(DatasetError) as info:
        list(FILES.list(spec([root])))
    assert str(info.value) == (
        f"input file {stray!r} does not match input.partition_format "
        "'dataset_partition_test/{user}/{season}/{genres}.wav' (its path relative to the dataset root is "
        "'dataset_partition_test/user1/notes.txt')")
    # a pattern that leaves the stray file out lists the rest
    assert len(list(FILES.list(spec([root], pattern="*.wav")))) == 6


def test_partition_format_without_keys_checks_every_file_and_cuts_by_mini_batch_size(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    s = spec([root], partition_keys=(), size=4)
    batches = FILES.mini_batches(list(FILES.list(s)), s)
    assert [(b.count, FILES.partition_key_value(b)) for b in batches] == [(4, {}), (2, {})]
    assert "partition_key_value" not in batches[0].payload
    write(os.path.join(root, "x.wav"), "x")
    with pytest.raises(DatasetError, match=r"^input file '.*/x.wav' does not match input.partition_format"):
        FILES.mini_batches(FILES.list(spec([root], partition_format=None, partition_keys=())), s)


def test_keys_need_a_format_and_must_be_its_fields(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    listing = list(FILES.list(spec([root], partition_format=None, partition_keys=())))
    with pytest.raises(ConfigError) as info:
        FILES.mini_batches(listing, spec([root], partition_format=None))
    assert str(info.value) == ("config key 'partition_keys': a file dataset needs input.partition_format to read "
                               "the keys from its paths")
    with pytest.raises(ConfigError) as info:
        FILES.mini_batches(listing, spec([root], partition_keys=["artist"]))
    assert str(info.value) == ("config key 'partition_keys': 'artist' is not a field of input.partition_format "
                               "'dataset_partition_test/{user}/{season}/{genres}.wav' (fields: user, season, genres)")


def test_the_key_value_is_part_of_the_mini_batch_key(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    s = spec([root], partition_keys=["user"])
    user2 = FILES.mini_batches(list(FILES.list(s)), s)[1]
    items = [i for i in FILES.list(s) if "/user2/" in i.path]
    assert user2.key == mini_batch_key(items, {"user": "user2"})
    assert user2.key != mini_batch_key(items) != mini_batch_key(items, {"user": "other"})


def test_key_groups_on_an_object_store_url(tmp_path):
    fs = fsspec.filesystem("memory")
    base = f"/pf-{uuid.uuid4().hex}"
    for user, season, genres in SAMPLE:
        fs.pipe(f"{base}/dataset_partition_test/{user}/{season}/{genres}.wav", b"x" * len(season))
    s = spec([f"memory://{base}/"])
    batches = FILES.mini_batches(list(FILES.list(s)), s)
    assert [(FILES.partition_key_value(b), b.payload["items"], b.payload["sizes"]) for b in batches][4] == (
        {"user": "user4", "genres": "piano"},
        [f"memory://{base}/dataset_partition_test/user4/fall/piano.wav",
         f"memory://{base}/dataset_partition_test/user4/spring/piano.wav"], [4, 6])
    groups = key_groups(FILES.list(s), PartitionFormat.parse(SAMPLE_FORMAT), s.paths, ["user"])
    assert [(value, len(items)) for value, items in groups] == [
        ({"user": "user1"}, 2), ({"user": "user2"}, 1), ({"user": "user3"}, 1), ({"user": "user4"}, 2)]


def test_mini_batch_context_dataset_describes_the_files_of_the_call(tmp_path):
    root = sample_dataset(tmp_path / "ds")
    s = spec([root])
    piano = FILES.mini_batches(list(FILES.list(s)), s)[4]
    base = os.path.join(root, "dataset_partition_test")
    assert FILES.dataset(piano) == MiniBatchDataset(
        kind="file", files=(f"{base}/user4/fall/piano.wav", f"{base}/user4/spring/piano.wav"),
        partition_key_value={"user": "user4", "genres": "piano"})
    half = FILES.dataset(piano, [1])          # a retry or a bisected half gets only its files
    assert half.to_path() == [f"{base}/user4/spring/piano.wav"]
    assert str(half) == ("FileDataset\n{\n  \"source\": [\n"
                         f"    \"{base}/user4/spring/piano.wav\"\n  ],\n"
                         "  \"partition_key_value\": {\n    \"user\": \"user4\",\n    \"genres\": \"piano\"\n  }\n}")
    assert str(MiniBatchDataset(kind="tabular", files=("a.csv",))) == (
        "TabularDataset\n{\n  \"source\": [\n    \"a.csv\"\n  ],\n  \"partition_key_value\": {}\n}")
