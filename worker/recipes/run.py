"""``python -m worker.recipes.run [recipe.json]``: train a built-in recipe inside a job.

Inside Kiln the recipe comes from the run's params (``engine.track.config``); a JSON file given
on the command line (a recipe dict) serves outside Kiln, where metrics go to ./kiln-runs/<time>/.
Prints the summary as one JSON line; a recipe that can't run exits with status 2 and says why.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from engine import track
from worker.recipes.config import RecipeError, parse_recipe
from worker.recipes.train import run_recipe

USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")) or (not args and not os.environ.get("KILN_CONFIG")):
        print(__doc__, file=sys.stderr)
        return USAGE_ERROR
    try:
        if args:
            data = _read_recipe_file(Path(args[0]))
            recipe = parse_recipe(data)
            track.init(recipe.as_dict())
        else:
            recipe = parse_recipe(track.config, strict=False)  # Kiln's params may carry extra keys
        summary = run_recipe(recipe)
    except RecipeError as exc:
        print(f"kiln recipe: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(json.dumps({"recipe": recipe.as_dict(), **summary}))
    return 0


def _read_recipe_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RecipeError(f"can't read the recipe file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise RecipeError(f"the recipe file {path} is not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("recipe"), dict):
        data = data["recipe"]  # a whole experiment spec: take its recipe block
    return data


if __name__ == "__main__":
    sys.exit(main())
