"""The GRPO stage: the driver that owns the algorithm (`driver`) and the stage around it (`stage`)."""
