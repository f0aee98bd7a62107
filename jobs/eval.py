"""Ray job entry: `python jobs/eval.py --model sft=DIR --model rl=DIR --rm DIR [key=value ...]`."""

import sys

from empathy_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
