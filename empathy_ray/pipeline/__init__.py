"""The pipeline: stages sft -> rm -> rl -> eval -> serve over one run folder.

stage.py    a stage as an object, its fingerprint and the pure skip / resume / run decision
stages.py   the five stages declared: inputs, config keys that count, resources, run functions
run.py      `Run`: the run folder's layout, summary.json and each stage's status
runner.py   `run_stages`: decide, check the cluster, execute in order
commands.py the `empathy-ray demo / sft / rm / rl` commands and the console summary
"""

from empathy_ray.pipeline.runner import check_stages, planned_stages, run_pipeline, run_stages

__all__ = ["check_stages", "planned_stages", "run_pipeline", "run_stages"]
