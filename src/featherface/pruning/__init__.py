"""B-FPGM: FPGM importance, soft pruning of six layer groups, Bayesian-optimised rates, hard pruning."""
