"""Config validation, one way for every config dataclass: a value outside a field's declared rule is refused with a
message naming the dotted key, whether the config is made in code, read from a file, or changed by a dotted
override. Every expected message is written out by hand from the rule it breaks."""

import dataclasses

import pytest

from featherface.anonymize import AnonymizeConfig
from featherface.config_schema import ConfigError, apply_overrides, build, load_config
from featherface.data.transforms import AugmentConfig
from featherface.detection.postprocess import PostprocessConfig
from featherface.detection.scaling import FaceSizeConfig
from featherface.detection.tracking import TrackerConfig
from featherface.losses.distill import DistillConfig
from featherface.losses.multibox import MultiBoxConfig
from featherface.models.config import (
    AnchorConfig,
    AttentionConfig,
    BackboneConfig,
    ContextConfig,
    DetectorConfig,
    NeckConfig,
    SSHWidths,
    nano_b_config,
)
from featherface.pipeline import PipelineConfig, load_pipeline_config
from featherface.pruning.phases import PruneConfig, load_prune_config
from featherface.pruning.search import SearchConfig
from featherface.training.config import TrainConfig, load_train_config
from featherface.training.distill import load_distill_config

SSH = {"out3x3": 32, "mid": 16, "out5x5": 16, "mid7x7": 16, "out7x7": 16}

# (config class, the fields it needs, field, a value its rule refuses, the message): one or two per class
OUT_OF_RANGE = [
    (TrainConfig, {}, "batch_size", 0, "batch_size: must be >= 1, got 0"),
    (TrainConfig, {}, "momentum", 1.0, "momentum: must be < 1, got 1.0"),
    (MultiBoxConfig, {}, "match_iou", 0.0, "match_iou: must be > 0, got 0.0"),
    (AugmentConfig, {}, "crop_scale", (0.3, 1.5), "crop_scale[1]: must be <= 1, got 1.5"),
    (DistillConfig, {}, "alpha", 1.5, "alpha: must be <= 1, got 1.5"),
    (SearchConfig, {}, "tolerance", -0.1, "tolerance: must be >= 0, got -0.1"),
    (PruneConfig, {}, "method", "twice", "method: must be one of sfp, oneshot, got 'twice'"),
    (PipelineConfig, {}, "calibration_images", 0, "calibration_images: must be >= 1, got 0"),
    (PostprocessConfig, {}, "conf_threshold", 1.5, "conf_threshold: must be <= 1, got 1.5"),
    (PostprocessConfig, {}, "keep_top_k", 0, "keep_top_k: must be >= 1, got 0"),
    (TrackerConfig, {}, "iou_threshold", -0.5, "iou_threshold: must be >= 0, got -0.5"),
    (TrackerConfig, {}, "measurement_noise", (1.0, 1.0, 0.0, 10.0), "measurement_noise[2]: must be > 0, got 0.0"),
    (FaceSizeConfig, {}, "max_upscale", 0.5, "max_upscale: must be >= 1, got 0.5"),
    (FaceSizeConfig, {}, "max_overlap_fraction", 1.0, "max_overlap_fraction: must be < 1, got 1.0"),
    (AnonymizeConfig, {}, "mode", "smudge", "mode: must be one of blur, pixelate, solid, got 'smudge'"),
    (AnonymizeConfig, {}, "colour", (0, 0, 256), "colour[2]: must be <= 255, got 256"),
    (BackboneConfig, {}, "stem_channels", 0, "stem_channels: must be >= 1, got 0"),
    (BackboneConfig, {}, "activation", "gelu", "activation: must be one of leaky, relu, silu, none, got 'gelu'"),
    (AttentionConfig, {"hidden_channels": [8, 16, 32]}, "spatial_kernel", 17, "spatial_kernel: must be <= 15, got 17"),
    (NeckConfig, {"kind": "bifpn", "channels": 72}, "repeats", 17, "repeats: must be <= 16, got 17"),
    (NeckConfig, {"kind": "bifpn", "channels": 72}, "kind", "pan", "kind: must be one of fpn, bifpn, got 'pan'"),
    (SSHWidths, SSH, "mid", 5000, "mid: must be <= 4096, got 5000"),
    (ContextConfig, {"levels": [SSH] * 3}, "groups", 65, "groups: must be <= 64, got 65"),
    (AnchorConfig, {}, "variances", (0.1, 0.0), "variances[1]: must be > 0, got 0.0"),
    (AnchorConfig, {}, "steps", [8, 16, 33], "steps[2]: must be one of 2, 4, 8, 16, 32, 64, 128, got 33"),
    (DetectorConfig, nano_b_config().to_dict(), "shuffle_groups", 0, "shuffle_groups: must be >= 1, got 0"),
]
CASES = pytest.mark.parametrize(("cls", "needs", "key", "bad", "message"), OUT_OF_RANGE)


@CASES
def test_a_config_made_in_code_refuses_a_value_outside_its_rule_naming_the_field(cls, needs, key, bad, message):
    valid = build(cls, needs, "")
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(valid, **{key: bad})
    assert str(error.value) == message


@CASES
def test_a_config_read_from_a_file_names_the_file_and_the_dotted_key(cls, needs, key, bad, message):
    with pytest.raises(ConfigError) as error:
        build(cls, {**needs, key: bad}, "c.yaml", "section.")
    assert str(error.value) == f"c.yaml: section.{message}"


@CASES
def test_a_dotted_override_is_checked_like_a_file_value(cls, needs, key, bad, message):
    valid = build(cls, needs, "")
    with pytest.raises(ConfigError) as error:
        apply_overrides(valid, {key: bad}, "flags", "section.")
    assert str(error.value) == f"flags: section.{message}"


def test_every_config_dataclass_is_covered():
    assert {case[0] for case in OUT_OF_RANGE} == {
        TrainConfig, MultiBoxConfig, AugmentConfig, DistillConfig, SearchConfig, PruneConfig, PipelineConfig,
        PostprocessConfig, TrackerConfig, FaceSizeConfig, AnonymizeConfig, BackboneConfig, AttentionConfig,
        NeckConfig, SSHWidths, ContextConfig, AnchorConfig, DetectorConfig,
    }  # fmt: skip


def test_values_made_in_code_are_checked_not_converted():
    with pytest.raises(ConfigError, match=r"^conf_threshold: expected a number, got '0\.5'$"):
        PostprocessConfig(conf_threshold="0.5")  # text is a number only when read from a file
    with pytest.raises(ConfigError, match=r"^keep_top_k: expected a whole number, got 7\.0$"):
        PostprocessConfig(keep_top_k=7.0)
    with pytest.raises(ConfigError, match=r"^smooth: expected true or false, got 1$"):
        TrackerConfig(smooth=1)
    with pytest.raises(ConfigError, match=r"^loss: expected a MultiBoxConfig, got \{\}$"):
        TrainConfig(loss={})


def test_checks_across_fields_name_the_field_from_the_top():
    data = nano_b_config().to_dict()
    data["context"]["groups"] = 5
    with pytest.raises(ConfigError, match=r"^model\.json: context\.groups: 5 does not divide neck\.channels 72$"):
        build(DetectorConfig, data, "model.json")
    with pytest.raises(ConfigError, match=r"^c\.yaml: prune\.search\.latency_target: .*latency_exponent > 0"):
        build(PruneConfig, {"search": {"latency_target": 0.6}}, "c.yaml", "prune.")


def test_a_field_without_a_default_must_be_given():
    with pytest.raises(ConfigError, match=r"^m\.json: neck\.channels: missing \(it has no default\)$"):
        build(NeckConfig, {"kind": "fpn"}, "m.json", "neck.")


def test_dotted_overrides_apply_to_a_loaded_preset_and_leave_the_rest():
    pool = load_prune_config("pool")
    overridden = load_prune_config("pool", {"search.trials": 3, "finetune_lr": 1e-3, "sfp_epochs": None})
    assert (overridden.search.trials, overridden.finetune_lr) == (3, 1e-3)
    assert overridden.search.target_params == pool.search.target_params == 150_000  # the file's value stays
    assert overridden.sfp_epochs == pool.sfp_epochs == 1  # None: not given
    assert pool.search.trials == 16  # the loaded config is not changed in place
    train = load_train_config("sample", {"epochs": "3", "loss.box_weight": 1.5})  # flags arrive as text
    assert (train.epochs, train.loss.box_weight, train.batch_size) == (3, 1.5, 8)
    assert load_distill_config("pool", {"alpha": 0.9}).alpha == 0.9
    assert load_pipeline_config("sample", {"benchmark_threads": 1}).benchmark_threads == 1
    assert apply_overrides(nano_b_config(), {"neck.repeats": 2}).neck.repeats == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"search.trials": 0}, "overrides: prune.search.trials: must be >= 1, got 0"),
        ({"search.trails": 3}, "overrides: prune.search.trails: unknown pruning option (known: trials, target_params,"),
        ({"serch.trials": 3}, "overrides: prune.serch: unknown pruning option (known: search, trial_epochs,"),
        ({"sfp_epochs.max": 3}, "overrides: prune.sfp_epochs.max: prune.sfp_epochs is a value, not a group of options"),
    ],
)
def test_a_bad_dotted_override_is_refused_naming_its_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_prune_config(None, overrides)
    assert str(error.value).startswith(message), error.value


def test_load_config_reads_one_section_and_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\nprune:\n  search:\n    trials: 0\n")
    assert load_config(path, "train", TrainConfig).epochs == 3
    assert load_config(path, "distill", DistillConfig) == DistillConfig()  # no section: the defaults
    with pytest.raises(ConfigError, match=rf"^{path}: prune\.search\.trials: must be >= 1, got 0$"):
        load_config(path, "prune", PruneConfig)
    flat = tmp_path / "flat.yaml"
    flat.write_text("epochs: 0\n")  # a file without sections holds the training options
    with pytest.raises(ConfigError, match=rf"^{flat}: epochs: must be >= 1, got 0$"):
        load_train_config(flat)


def test_a_config_with_a_base_changes_only_the_options_it_names(tmp_path):
    from featherface.config_schema import read_config_file

    (tmp_path / "recipe.yaml").write_text(
        "train:\n  lr: 0.002\n  augment:\n    image_size: 384\n    crop_scale: [0.3, 1.0]\n"
        "prune:\n  sfp_epochs: 1\n  search:\n    trials: 16\n"
    )
    (tmp_path / "more.yaml").write_text(
        "base: recipe.yaml\ntrain:\n  augment:\n    crop_scale: [0.5, 1.0]\nprune:\n  sfp_epochs: 2\n"
        "pipeline:\n  distill_epochs: 2\n"
    )
    assert read_config_file(tmp_path / "more.yaml") == {
        "train": {"lr": 0.002, "augment": {"image_size": 384, "crop_scale": [0.5, 1.0]}},  # the list replaced
        "prune": {"sfp_epochs": 2, "search": {"trials": 16}},
        "pipeline": {"distill_epochs": 2},
    }


def test_a_base_chain_that_loops_or_names_no_file_is_refused(tmp_path):
    from featherface.config_schema import read_config_file

    (tmp_path / "loop.yaml").write_text("base: loop.yaml\ntrain:\n  lr: 0.001\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml: base: more than 4 configs deep"):
        read_config_file(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("base: [pool]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: base: expected a preset name or a config file path"):
        read_config_file(tmp_path / "bad.yaml")
    (tmp_path / "gone.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such config file"):
        read_config_file(tmp_path / "gone.yaml")


def test_the_continuation_preset_is_the_pool_recipe_with_its_own_few_changes():
    pool, more = load_pipeline_config("pool"), load_pipeline_config("pool-continue")
    assert (more.student, more.student_init, more.distill_epochs, more.distill_lr) == (
        "nano-b-distilled",
        "own",
        2,
        4e-4,
    )
    assert dataclasses.replace(more, student=pool.student, student_init=pool.student_init,
                               distill_epochs=pool.distill_epochs, distill_lr=None) == pool  # fmt: skip
    prune = load_prune_config("pool-continue")
    assert (prune.sfp_epochs, prune.finetune_epochs) == (2, 3)
    assert prune.search == load_prune_config("pool").search
    assert load_train_config("pool-continue") == load_train_config("pool")


def test_the_deployed_continuation_preset_distils_the_shipped_pruned_model_without_pruning():
    pool, more = load_pipeline_config("pool"), load_pipeline_config("pool-continue-deployed")
    assert (more.student, more.student_init, more.skip_pruning, more.distill_lr) == (
        "nano-b-pretrained", "own", True, 4e-4
    )  # fmt: skip
    assert more.calibrate and not pool.skip_pruning
    assert load_train_config("pool-continue-deployed") == load_train_config("pool")


def test_distill_epochs_0_needs_a_student_that_ships_weights():
    assert PipelineConfig(student="nano-b-distilled", distill_epochs=0).distill_epochs == 0
    with pytest.raises(ConfigError, match="distill_epochs: 0 keeps the student as it is"):
        PipelineConfig(student="nano-b", distill_epochs=0)
    with pytest.raises(ConfigError, match="distill_epochs: 0 keeps the student as it is"):
        PipelineConfig(student="nano-b-distilled", student_init="teacher-backbone", distill_epochs=0)


def test_every_benchmark_config_loads_in_every_section_it_feeds():
    # the ablation configs are run by the commands in their headers; a typo in one would surface only hours later
    from pathlib import Path

    from featherface.training.distill import load_distill_config

    configs = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        for load in (load_train_config, load_pipeline_config, load_prune_config, load_distill_config):
            load(path)


def test_the_occlusion_arm_is_its_control_plus_occlusion():
    from pathlib import Path

    configs = Path(__file__).parents[1] / "benchmarks" / "configs"
    arm, control = (
        load_train_config(configs / "occlusion-0.3.yaml"),
        load_train_config(configs / "backbone-lr-0.1.yaml"),
    )
    assert arm.augment.occlusion_probability == 0.3 and control.augment.occlusion_probability == 0.0
    assert dataclasses.replace(arm, augment=control.augment) == control
