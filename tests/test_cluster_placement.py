"""Placement planning (pure: no Ray): role layouts, and clear errors for layouts a cluster cannot hold."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from omni_rl.cluster import (
    ENVIRONMENT,
    GENERATION,
    TRAINER,
    ClusterConfig,
    ClusterResources,
    Placement,
    PlacementError,
    plan_placement,
)
from omni_rl.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def nodes(*gpus: int, cpus: float = 16) -> ClusterResources:
    return ClusterResources.of(
        [{"cpus": cpus, "gpus": g, "address": f"10.0.0.{i}"} for i, g in enumerate(gpus)]
    )


def test_colocated_trainer_and_generation_share_each_gpu():
    plan = plan_placement(Placement(mode="colocated", trainer_workers=4, generation_tp=2), nodes(4))
    assert plan.device == "gpu" and plan.gpus == 4
    assert [(g.name, len(g.bundles), g.strategy) for g in plan.groups] == [
        ("colocated-0", 2, "STRICT_PACK"),
        ("colocated-1", 2, "STRICT_PACK"),
    ]
    assert all(dict(b) == {"GPU": 1, "CPU": 2.0} for g in plan.groups for b in g.bundles)
    trainers, engines = plan.role(TRAINER), plan.role(GENERATION)
    assert [(s.group, s.bundles, s.num_gpus) for s in trainers] == [
        ("colocated-0", (0,), 0.5),
        ("colocated-0", (1,), 0.5),
        ("colocated-1", (0,), 0.5),
        ("colocated-1", (1,), 0.5),
    ]
    assert [(s.group, s.bundles, s.num_gpus, s.shards) for s in engines] == [
        ("colocated-0", (0, 1), 0.5, 2),
        ("colocated-1", (0, 1), 0.5, 2),
    ]
    # every trainer GPU hosts exactly one generation shard
    trainer_spots = {(s.group, s.bundles[0]) for s in trainers}
    engine_spots = {(s.group, b) for s in engines for b in s.bundles}
    assert trainer_spots == engine_spots and len(trainer_spots) == 4


def test_colocated_gpu_share_splits_the_gpu():
    plan = plan_placement(Placement(trainer_workers=2, colocated_gpu_share=0.3), nodes(2))
    assert {s.num_gpus for s in plan.role(TRAINER)} == {0.7} and {
        s.num_gpus for s in plan.role(GENERATION)
    } == {0.3}


def test_separate_gives_generation_its_own_gpus():
    plan = plan_placement(
        Placement(mode="separate", trainer_workers=2, generation_workers=2, generation_tp=2, env_workers=3),
        nodes(4, 4),
    )
    assert plan.gpus == 6
    assert [g.name for g in plan.groups] == ["trainer", "generation-0", "generation-1"]
    assert [s.num_gpus for s in plan.role(TRAINER)] == [1.0, 1.0]
    assert [(s.group, s.bundles) for s in plan.role(GENERATION)] == [
        ("generation-0", (0, 1)),
        ("generation-1", (0, 1)),
    ]
    envs = plan.role(ENVIRONMENT)
    assert len(envs) == 3 and all(s.group is None and s.num_gpus == 0 and s.num_cpus == 1.0 for s in envs)
    for group in plan.groups:  # planned: one node per engine (STRICT_PACK)
        assert len(group.nodes) == len(group.bundles)
        if group.name.startswith("generation"):
            assert len(set(group.nodes)) == 1


def test_separate_engines_go_to_nodes_with_room():
    # 3 nodes x 2 GPUs: trainer on one node, each TP-2 engine on its own node
    plan = plan_placement(
        Placement(mode="separate", trainer_workers=2, generation_workers=2, generation_tp=2), nodes(2, 2, 2)
    )
    used = [set(g.nodes) for g in plan.groups]
    assert all(len(u) == 1 for u in used) and len(set().union(*used)) == 3


def test_more_gpus_than_the_cluster_has_is_refused():
    with pytest.raises(PlacementError, match=r"needs 8 GPUs .*trainer_workers=8.* has 4"):
        plan_placement(Placement(mode="colocated", trainer_workers=8), nodes(4))
    with pytest.raises(PlacementError, match=r"needs 6 GPUs .*separate.* has 4"):
        plan_placement(
            Placement(mode="separate", trainer_workers=2, generation_workers=2, generation_tp=2), nodes(4)
        )


def test_tensor_parallel_engine_must_fit_one_node():
    with pytest.raises(PlacementError, match=r"generation_tp=4: .* largest node has 2 GPUs"):
        plan_placement(Placement(mode="separate", trainer_workers=1, generation_tp=4), nodes(2, 2, 2))


def test_fragmented_gpus_are_refused_although_the_total_is_enough():
    # 2 nodes x 3 GPUs = 6 = 2 trainer + 2 engines x TP 2, but no node keeps 2 free GPUs for the last engine
    cfg = Placement(mode="separate", trainer_workers=2, generation_workers=2, generation_tp=2)
    with pytest.raises(PlacementError, match=r"'generation-1' .* does not fit"):
        plan_placement(cfg, nodes(3, 3))
    assert plan_placement(cfg, nodes(4, 2)).gpus == 6  # fits when a node has room


def test_pack_spills_over_to_more_nodes():
    plan = plan_placement(Placement(mode="separate", trainer_workers=6, generation_workers=0), nodes(4, 4))
    trainer_nodes = plan.group("trainer").nodes
    assert sorted(trainer_nodes.count(n) for n in set(trainer_nodes)) == [2, 4]  # one node filled first


def test_strict_spread_needs_distinct_nodes():
    cfg = Placement(
        mode="separate", trainer_workers=3, generation_workers=0, trainer_strategy="STRICT_SPREAD"
    )
    plan = plan_placement(cfg, nodes(1, 1, 1))
    assert len(set(plan.group("trainer").nodes)) == 3
    with pytest.raises(PlacementError, match="'trainer'"):
        plan_placement(cfg, nodes(2, 1))


def test_cpu_requests_are_checked():
    with pytest.raises(PlacementError, match=r"needs 18 CPUs"):
        plan_placement(
            Placement(trainer_workers=4, trainer_cpus=3, generation_cpus=1, env_workers=2), nodes(4, cpus=8)
        )


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            Placement(trainer_workers=3, generation_tp=2),
            r"trainer_workers=3 must be a multiple of .*generation_tp=2",
        ),
        (Placement(trainer_workers=4, generation_workers=3), r"generation_workers=3 must be .* = 4"),
        (Placement(device="gpu"), r"device is 'gpu' but the cluster has no GPUs"),
    ],
)
def test_contradictory_settings_name_the_field(cfg, message):
    resources = nodes(0) if cfg.device == "gpu" else nodes(8)
    with pytest.raises(PlacementError, match=message):
        plan_placement(cfg, resources)


def test_no_generation_gives_the_trainer_whole_gpus():
    plan = plan_placement(Placement(mode="colocated", trainer_workers=2, generation_workers=0), nodes(2))
    assert [g.name for g in plan.groups] == ["trainer"] and not plan.role(GENERATION)
    assert [s.num_gpus for s in plan.role(TRAINER)] == [1.0, 1.0]


def test_cpu_layout_takes_no_cpus_and_limits_threads():
    plan = plan_placement(
        Placement(trainer_workers=2, generation_workers=1, env_workers=2, cpu_threads=1), nodes(0, cpus=2)
    )
    assert plan.device == "cpu" and plan.groups == ()
    assert len(plan.slots) == 5
    assert all(s.num_cpus == 0 and s.num_gpus == 0 and s.group is None for s in plan.slots)
    assert all(
        s.env_vars["OMP_NUM_THREADS"] == "1" and s.env_vars["OMNI_RL_TORCH_THREADS"] == "1"
        for s in plan.slots
    )
    # device=cpu on a GPU cluster ignores the GPUs
    assert plan_placement(Placement(device="cpu"), nodes(8)).gpus == 0


def test_cpu_layout_refuses_what_cannot_be_scheduled():
    with pytest.raises(PlacementError, match=r"needs 3 CPUs \(3 actors x placement.cpu_actor_cpus=1\)"):
        plan_placement(Placement(cpu_actor_cpus=1), nodes(0, cpus=2))
    with pytest.raises(PlacementError, match="generation_tp=2 needs GPUs"):
        plan_placement(Placement(generation_tp=2, trainer_workers=2), nodes(0))


def test_describe_names_groups_and_roles():
    text = plan_placement(Placement(trainer_workers=2, generation_tp=2), nodes(2)).describe()
    assert "group colocated-0" in text and "trainer: 2 x" in text and "generation: 1 x" in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"trainer_workers": 0}, "placement.trainer_workers"),
        ({"generation_tp": 0}, "placement.generation_tp"),
        ({"colocated_gpu_share": 1.0}, "placement.colocated_gpu_share"),
        ({"env_cpus": -1}, "placement.env_cpus"),
        ({"cpu_threads": 0}, "placement.cpu_threads"),
    ],
)
def test_placement_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Placement(**kwargs)


@pytest.mark.parametrize(
    "address", [None, "local", "auto", "127.0.0.1:6379", "head:6379", "ray://head:10001", "[::1]:6379"]
)
def test_cluster_address_forms(address):
    assert ClusterConfig(address=address).address == address


@pytest.mark.parametrize(
    "address", ["", "head", "http//x:1", " auto", "head:port", "ray://head", "http://head:8265"]
)
def test_bad_cluster_address_is_refused(address):
    with pytest.raises(ValueError, match=r"cluster\.address"):
        ClusterConfig(address=address)


def test_cluster_config_loads_from_yaml(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(
        textwrap.dedent(
            """
            address: auto
            runtime_env: {env_vars: {A: "1"}}
            placement: {mode: separate, trainer_workers: 2, generation_tp: 2}
            """
        )
    )
    cfg = load_config(ClusterConfig, path, ["placement.generation_workers=3"])
    assert cfg.address == "auto" and cfg.runtime_env == {"env_vars": {"A": "1"}}
    assert (cfg.placement.mode, cfg.placement.generation_workers, cfg.placement.generation_tp) == (
        "separate",
        3,
        2,
    )
    with pytest.raises(ConfigError, match=r"placement\.mode"):
        load_config(ClusterConfig, path, ["placement.mode=mixed"])
    with pytest.raises(ConfigError, match="trainer_workers"):
        load_config(ClusterConfig, path, ["placement.trainer_workers=0"])


GPU_CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("tiny_"))


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: p.name)
def test_shipped_gpu_configs_are_checked_against_the_cluster_before_start(path):
    """Each GPU config's placement fits two nodes of 8 GPUs, and a cluster that is too small is refused
    before any actor starts, with the reason and the numbers."""
    from omni_rl.cli.train import load_run_config

    placement = load_run_config(path, []).cluster.placement
    big = ClusterResources.of([{"cpus": 128, "gpus": 8}, {"cpus": 128, "gpus": 8}])
    plan = plan_placement(placement, big)
    assert plan.gpus <= 16
    with pytest.raises(PlacementError, match="the cluster has no GPUs"):
        plan_placement(placement, ClusterResources.of([{"cpus": 2, "gpus": 0}]))
    if plan.gpus > 1:  # one GPU short
        short = plan.gpus - 1
        with pytest.raises(PlacementError, match=rf"placement needs \d+ GPUs .* but the cluster has {short}"):
            plan_placement(placement, ClusterResources.of([{"cpus": 64, "gpus": short}]))
