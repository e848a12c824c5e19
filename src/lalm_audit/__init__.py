"""lalm-audit: membership-inference auditing of Large Audio Language Models.

The package holds all logic; the Snakemake workflow in the repository root only
wires package functions together (see README.md).
"""

__version__ = "0.1.0"
