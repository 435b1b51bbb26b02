"""Where one LARNN forward spends its time, by phase of the compiled loop (issue 30).

    python benchmarks/scan_phases.py [--config a|b] [--calls 10] [--threads 2] [--csrc DIR]

Copies the compiled loops' sources (larnn/scan/csrc, or DIR: e.g. an older commit's, from
`git archive COMMIT larnn/scan/csrc | tar -x -C /tmp/old`), wraps each phase of
`scan_forward` in timers (std::chrono), builds the copy as an extension of its own and runs
`--calls` eval forwards of config (a) or (b) of benchmarks/speed.py at B=256 T=128 C=9
(the first call included). Prints ms per call of each phase and the wall time per call;
"Python + dispatch" is the wall time minus the time inside scan_forward. The loop by step
is timed on the calling thread (its window's split by thread 0, which runs half the
blocks), the loop by block on thread 0. A phase whose statement is not in the sources
(an older layout), or whose loop did not run, is left out. The sources in the package are
not changed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.cpp_extension import load

from larnn.model import LARNN, LARNNConfig
from larnn.scan import compiled

sys.path.insert(0, str(Path(__file__).parent))
from speed import CONFIGS, B, C, T  # noqa: E402

PHASES = {  # timer index: what it times
    0: "input + hidden -> gates, query (one product)",
    1: "query activation",
    2: "window, all",
    3: "attended values -> gates",
    4: "gates, c, h, ELU, norms (and stores)",
    5: "norm on h",
    6: "norm on keys/values",
    7: "new slot's key/value product",
    8: "scatter into the history",
    9: "window: scores (thread 0)",
    10: "window: softmax (thread 0)",
    12: "window: value sum (thread 0)",
    13: "window: copy-out (thread 0)",
    14: "inside scan_forward",
}
# Statements of scan_forward.cpp, by timer index: (pattern, thread 0 only). Loop by step
# first, then loop by block (scan_block).
STATEMENTS = [
    (
        0,
        r"    if \(one_column\)\n      matvec\(w_xh_t[^\n]*\n"
        r"    else\n      at::mm_out\(z, w_xh, xh\);\n",
        False,
    ),
    (
        1,
        r"    for_each_row\(runs, \[&\]\(int64_t r\) \{\n      std::memcpy\(q_rows.*?\}\);\n",
        False,
    ),
    (2, r"      attend\(Window\{.*?\);\n", False),
    (
        3,
        r"      if \(one_column\)\n        matvec\(w_a_t[^\n]*\n"
        r"      else\n        gates\.addmm_\([^\n]*\n",
        False,
    ),
    (4, r"    update_cell\([^\n]*\n", False),
    (5, r"    norm_forward\(h_norm, h_new[^\n]*\n[^\n]*\n", False),
    (6, r"    norm_forward\(kv_norm, feature[^\n]*\n[^\n]*\n", False),
    (
        7,
        r"    if \(one_column\)\n      matvec\(w_kv_t[^\n]*\n"
        r"    else\n      at::mm_out\(kv_new, w_kv, memory\);\n",
        False,
    ),
    (8, r"    scatter_slot\([^\n]*\n", False),
    (9, r"  block_scores\(key_of, w\.q \+ b0[^\n]*\n[^\n]*\n", True),
    (10, r"  if \(w\.visible\.rows\) \{\n    block_shown.*?\n  \}\n", True),
    (12, r"  std::fill\(acc, acc \+ H \* kLanes, 0\.0f\);\n.*?\n  \}\n", True),
    (13, r"  for \(int64_t i = 0; i < H; \+\+i\)\n    std::copy\(acc[^\n]*\n", True),
    (0, r"    block_product\(s\.w_xh_t[^\n]*\n", True),
    (1, r"    activate\(s\.query_activation[^\n]*\n", True),
    (2, r"      attend_block<kHidden>\(w, block[^\n]*\n", True),
    (3, r"      block_product\(s\.w_a_t[^\n]*\n", True),
    (4, r"    float\* const sig_rows.*?store_block\(s\.cs[^\n]*\n", True),
    (7, r"    block_product\(s\.w_kv_t[^\n]*\n", True),
]
TIMERS = """
#include <chrono>
namespace larnn {
inline double phase_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline double phase_seconds[16] = {};
}  // namespace larnn
"""
READER = """
void larnn_phase_seconds(at::Tensor& out) {  // the timers' totals, in seconds
  for (int i = 0; i < 16; ++i) out.data_ptr<double>()[i] = larnn::phase_seconds[i];
}
TORCH_LIBRARY_FRAGMENT(larnn, m) { m.def("phase_seconds(Tensor(a!) out) -> ()"); }
TORCH_LIBRARY_IMPL(larnn, CPU, m) { m.impl("phase_seconds", &larnn_phase_seconds); }
"""


def instrument(source: Path, target: Path) -> list[int]:
    """Copies the sources with timers around the statements found; returns their indices."""
    for path in source.iterdir():
        shutil.copy(path, target)
    code = (target / "scan_forward.cpp").read_text()
    code = code.replace('#include "scan_common.h"', '#include "scan_common.h"\n' + TIMERS, 1)
    found = []
    for index, pattern, thread0 in STATEMENTS:
        match = re.search(pattern, code, re.S)
        if not match:
            continue
        found.append(index)
        mine = "at::get_thread_num() == 0" if thread0 else "true"
        wrapped = (
            f"{{ const bool mine_{index} = {mine}; const double start_{index} = "
            f"larnn::phase_now();\n{match.group(0)}if (mine_{index}) "
            f"larnn::phase_seconds[{index}] += larnn::phase_now() - start_{index}; }}\n"
        )
        code = code[: match.start()] + wrapped + code[match.end() :]
    entry = "  at::AutoDispatchBelowADInplaceOrView below_autograd;\n"
    total = (
        "  struct Total { double start; ~Total() { larnn::phase_seconds[14] += "
        "larnn::phase_now() - start; } } total{larnn::phase_now()};\n"
    )
    code = code.replace(entry, total + entry, 1)
    (target / "scan_forward.cpp").write_text(code + READER)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="a", choices=sorted(CONFIGS))
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--csrc", type=Path, default=compiled.SOURCES[0].parent)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    build = Path(tempfile.mkdtemp(prefix="larnn_phases_"))
    found = instrument(args.csrc, build)
    flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", *compiled.vector_flags()]
    load(
        name=f"larnn_scan_phases_{abs(hash(str(args.csrc))) % 10**8}",
        sources=[str(build / "scan_forward.cpp"), str(build / "scan_backward.cpp")],
        extra_cflags=flags,
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
    )
    for op in ("larnn::scan_forward", "larnn::scan_backward"):
        torch.library.register_fake(op, compiled._writes_only_its_arguments)
    compiled._loaded = True  # the instrumented ops stand in for the package's
    print(
        f"config ({args.config}), B={B} T={T} C={C}, {args.calls} eval forwards, "
        f"{args.threads} threads, ATen CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, flags {' '.join(flags)}, sources "
        f"{args.csrc}; phases timed: {', '.join(PHASES[i] for i in sorted(set(found)))}"
    )
    torch.manual_seed(0)
    model = LARNN(LARNNConfig(input_size=C, **CONFIGS[args.config])).eval()
    x = torch.randn(T, B, C)
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(args.calls):
            model(x)
        wall = (time.perf_counter() - start) * 1e3 / args.calls
    seconds = torch.zeros(16, dtype=torch.float64)
    torch.ops.larnn.phase_seconds(seconds)
    per_call = (seconds * 1e3 / args.calls).tolist()
    for index, name in PHASES.items():
        if per_call[index] or index == 14:  # a phase of the loop that did not run: 0
            print(f"{name:<48} {per_call[index]:8.1f} ms")
    print(f"{'Python + dispatch (wall - inside scan_forward)':<48} {wall - per_call[14]:8.1f} ms")
    print(f"{'wall per call':<48} {wall:8.1f} ms")


if __name__ == "__main__":
    main()
