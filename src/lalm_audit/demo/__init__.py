"""The offline demo world: synthetic speakers, sentences and datasets with known ground truth."""

from lalm_audit.demo.world import DATASETS, TRAIN_POOL, build_world, make_speakers, plan_world

__all__ = ["DATASETS", "TRAIN_POOL", "build_world", "make_speakers", "plan_world"]
