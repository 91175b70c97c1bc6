"""The restoration engine: device and precision choice, memory-planned tiling with image-wide
GroupNorm statistics, seam blending, and a prefetching pipeline for folders.

`restorer.Restorer` is the entry point; `pipeline.run_jobs` overlaps image I/O with compute.
Nothing here reads files other than checkpoints or knows about terminals.
"""
