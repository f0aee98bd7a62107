"""Serve a model on Ray Serve with the OpenAI-compatible API:

    python jobs/serve.py --model runs/demo/rl/model [--config configs/demo.yaml] key=value ...
    ray job submit --working-dir . -- python jobs/serve.py --model /shared/models/final

On a cluster the app stays up after the job ends; with a local Ray it serves until Ctrl-C.
"""

import sys

from empathy_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
