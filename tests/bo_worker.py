"""A BO worker for the study tests: the real search loop with a cheap, deterministic trial score."""

import os
import sys
import time

from featherface.models.zoo import create_model
from featherface.pruning.masks import kept_fraction
from featherface.pruning.search import SearchConfig, run_search


def main() -> None:
    storage, trials, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    net = create_model("nano-b", pretrained=False)

    def evaluate(candidate, masks):
        time.sleep(delay)
        return {"val_loss": kept_fraction(masks), "worker": os.getpid()}

    run_search(net, evaluate, SearchConfig(trials=trials), storage)


if __name__ == "__main__":
    main()
