"""GRPO entry point, locally or on a cluster:

    python jobs/rl.py --config configs/demo.yaml [--resume] key=value ...
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/rl.py --config configs/demo.yaml

Inside `ray job submit` it joins the cluster (RAY_ADDRESS is set); otherwise it starts a local Ray.
"""

import sys

from empathy_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["rl", *sys.argv[1:]]))
