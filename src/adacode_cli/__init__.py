"""adacode: AdaCode image restoration (Liu et al., ICCV 2023) as a command-line tool."""

__version__ = "0.1.0"
