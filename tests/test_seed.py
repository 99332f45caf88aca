"""``--seed`` makes training bit-reproducible on one machine: the layers that start random are drawn from the seed,
whatever the process drew before (the issue: ``train --model nano-b --seed 0`` twice gave epoch-1 losses of 36.467
and 36.135, the seed being set after the new layers were made)."""

import csv

import torch
from safetensors.torch import load_file

from featherface.cli import main
from featherface.models.zoo import create_model

# one step of 4 sample photos at 64 x 64: the whole of training's path (data, augmentation, loss, optimiser, save)
TINY = """train:
  epochs: 1
  batch_size: 4
  dataset_repeats: 1
  workers: 0
  augment: {image_size: 64, crop_attempts: 5}
"""


def test_a_seeded_model_is_the_same_whatever_was_drawn_before_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = create_model("nano-b", seed=0).state_dict()
    assert torch.equal(torch.rand(3), expected_next)  # building it drew nothing from the global generator
    torch.rand(1000)
    second = create_model("nano-b", seed=0).state_dict()
    other = create_model("nano-b", seed=1).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(
        first["heads.0.cls.weight"], other["heads.0.cls.weight"]
    )  # the seed, not a constant, decides the new layers


def test_train_twice_with_one_seed_gives_bit_identical_checkpoints(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    # one thread: the same bits need the same thread count (README), and one runs in a second on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runs = []
    try:
        for name, drawn_before in (("a", 5), ("b", 5000)):
            torch.rand(drawn_before)  # what the process drew before (another model, another test) must not matter
            args = ["train", "--model", "nano-b", "--data", "sample:train", "--config", str(config), "--seed", "0"]
            assert main([*args, "--device", "cpu", "--out", str(tmp_path / name)]) == 0
            runs.append(tmp_path / name)
    finally:
        torch.set_num_threads(threads)
    a, b = (load_file(run / "last.safetensors") for run in runs)
    assert a.keys() == b.keys() and len(a) > 100
    differing = [name for name in a if not torch.equal(a[name], b[name])]
    assert differing == []
    losses = [next(csv.DictReader((run / "metrics.csv").open()))["loss_total"] for run in runs]
    assert losses[0] == losses[1]
