"""Benchmark: how long `mono3d COMMAND -h` takes (the parsers' imports), median of `--repeat` fresh processes.

    python bench/cli.py [--repeat 5]

The target is under 2 s per command on the 2-core CPU. Prints the command, the median and the worst seconds,
and whether torch and matplotlib were imported to print the help (python -X importtime)."""
import argparse, platform, statistics, subprocess, sys, time
from machine import cpu

COMMANDS = ['generate', 'train', 'evaluate', 'tokens', 'prior', 'sample', 'evaluate-prior', 'preview', 'status', 'serve']




def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeat', type=int, default=5)
    a = ap.parse_args()
    print(f'# bench/cli.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# {cpu()}, python {platform.python_version()}')
    print('| command | median s | worst s | imports torch | imports matplotlib |\n|---|---|---|---|---|')
    for c in COMMANDS:
        cmd = [sys.executable, '-m', 'mono3d.cli', c, '-h']
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter(); subprocess.run(cmd, capture_output=True, check=True); times.append(time.perf_counter() - t)
        imp = subprocess.run([sys.executable, '-X', 'importtime', *cmd[1:]], capture_output=True, text=True).stderr
        has = lambda m: 'yes' if f'| {m}\n' in imp or f'|   {m}\n' in imp or f' {m}\n' in imp else 'no'
        print(f'| {c} | {statistics.median(times):.2f} | {max(times):.2f} | {has("torch")} | {has("matplotlib")} |', flush=True)


if __name__ == '__main__': main()
