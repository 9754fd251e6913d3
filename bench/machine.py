"""The machine a benchmark ran on, for the first lines of its output: the CPU model, its instruction sets, its cores.

Figures are compared only within one run on one CPU; every bench script prints this beside them."""
import os, platform

ISA = ('amx_bf16', 'avx512_bf16', 'avx512f', 'avx2')


def cpu() -> str:
    "`'AMD EPYC (avx512_bf16, avx512f, avx2), 2 cores'` from /proc/cpuinfo (the platform's processor name elsewhere)."
    try:
        info = open('/proc/cpuinfo').read()
        model = next(l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith('model name'))
    except (OSError, StopIteration): info, model = '', platform.processor()
    return f"{model} ({', '.join(f for f in ISA if f' {f}' in info)}), {os.cpu_count()} cores"
