"""Process and cluster plumbing shared by every role: process set-up and Ray, resources and
placement, metrics files, GRPO checkpoints. No model code and no algorithm here."""
