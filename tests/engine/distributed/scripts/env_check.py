"""Prints the variables the launcher sets, then one rank fails if asked (argv: fail RANK)."""

import os
import sys

keys = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]
print("env " + " ".join(f"{k}={os.environ[k]}" for k in keys), flush=True)
if sys.argv[1:2] == ["fail"] and os.environ["RANK"] == sys.argv[2]:
    raise ValueError(f"boom on rank {os.environ['RANK']}")
if sys.argv[1:2] == ["fail"]:
    import time

    time.sleep(60)  # the launcher must stop the ranks that are still running
