import json
import os
import subprocess
import sys

# A fresh process turns the cache on, runs SpikeInterface's detection kernel once and reports
# where numba found it: compiled (a miss) or read from the cache (a hit).
CALL_KERNEL = """
import json
import numpy as np
from spikeinterface_deepsort.compiled_kernels import cache_compiled_kernels
from spikeinterface.sortingcomponents.peak_detection import locally_exclusive

cache_compiled_kernels()
traces = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
kernel = locally_exclusive.detect_peaks_numba_locally_exclusive_on_chunk
kernel(traces, "neg", np.full(4, 2.5, dtype="float32"), 10, np.ones((4, 4), dtype=bool))
print(json.dumps({"hits": sum(kernel.stats.cache_hits.values()), "misses": sum(kernel.stats.cache_misses.values())}))
"""


def run_kernel_in_fresh_process(cache_dir) -> dict:
    done = subprocess.run([sys.executable, "-c", CALL_KERNEL], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"NUMBA_CACHE_DIR": str(cache_dir)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_reads_the_detection_kernel_from_the_cache(tmp_path):
    assert run_kernel_in_fresh_process(tmp_path) == {"hits": 0, "misses": 1}
    assert any(tmp_path.rglob("*.nbi"))  # numba's index of compiled versions was written
    assert run_kernel_in_fresh_process(tmp_path) == {"hits": 1, "misses": 0}
