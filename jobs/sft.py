"""Ray job entry: `python jobs/sft.py --config configs/demo.yaml key=value ...` (or via `ray job submit`)."""

import sys

from empathy_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["sft", *sys.argv[1:]]))
