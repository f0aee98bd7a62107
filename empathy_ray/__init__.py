"""empathy-ray: Chain-of-Empathy counselling models trained with SFT, a reward model and GRPO on Ray."""

__version__ = "0.1.0"
