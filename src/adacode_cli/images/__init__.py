"""The image layer: files in and out of the restoration commands, with no torch dependency.

decode / encode read and write pixels with their depth, alpha and metadata (16-bit PNG and TIFF
through png16, tiff16 and deep); resize, masks and weightmap prepare arrays; inputs decides which
files are processed and where results go.
"""
