"""Benchmark: the evaluation report of a trained tokenizer (issue 5's targets).

    python bench/evaluate.py RUN_DIR [--out-dir DIR] [any `mono3d evaluate` flag]

RUN_DIR holds `tokenizer.safetensors` (a `mono3d train` run). Runs the
whole evaluation with its defaults (4,000 fresh videos, 125 test videos per class, heads trained for 30
epochs, the 3D CNN for 8) and prints the machine, the time each stage took and the report: classification
from tokens beside the kinematic, 3D-CNN and random-code baselines, and forecasting beside constant
velocity. Targets: >= 99% balanced accuracy from tokens and ahead of both baselines; future-position
MAE <= 0.05 scene units and ahead of constant velocity.
"""
import os, platform, sys
from pathlib import Path
import torch
from mono3d.config import config_from_args
from mono3d.evaluate import build_eval_parser, evaluate_run, EvalConfig


def main():
    a = vars(build_eval_parser('bench/evaluate.py').parse_args()); a.pop('debug', None)
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
          f'GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else "none"}', flush=True)
    cfg = config_from_args(EvalConfig, a)
    evaluate_run(cfg)
    out = Path(cfg.out_dir or Path(cfg.run_dir) / 'eval')
    print((out / 'report.md').read_text())


if __name__ == '__main__':
    sys.exit(main())
