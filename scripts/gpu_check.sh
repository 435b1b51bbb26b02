#!/usr/bin/env bash
# The checks that need a CUDA device, in one short run (for the device machine, whose image
# has torch with CUDA but not this package's other dependencies): the scan on the GPU
# against the CPU reference, then the speed benchmark on the GPU. Logs go to $OUT if set.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
logs="${OUT:-/tmp}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_model.py -k cuda 2>&1 | tee "$logs/cuda_tests.log" | tail -15
python3 benchmarks/speed.py --device cuda --quick 2>&1 | tee "$logs/speed_cuda.log"
