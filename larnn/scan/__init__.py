"""A LARNN layer's loop over time, fast: the autograd Function, its Python and compiled loops.

types      the contract: what the scan takes (LayerParameters, LayerKnobs) and writes
layer      a layer's parameters regrouped for the scan, and the call (run_layer)
function   LARNNScan, with its forward and backward loops in ATen calls
compiled   the same loops in C++ for float32 on the CPU (csrc/), built on first use
"""
