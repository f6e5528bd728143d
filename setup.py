"""Packaging: metadata and dependencies are in setup.cfg; this maps ``web/`` into the package.

The repository keeps the web layer (templates, static files, the gettext catalogues in
``translations/``, the npm-installed map assets and the map page's bundle) in ``web/`` at
the top; wheels and sdists carry it as ``voicemap/web``, where ``voicemap/resources.py``
finds it once installed. Each directory of it whose path is a valid dotted name is listed
as a (data-only) package, as setuptools asks; the files of the others
(``leaflet.markercluster``) belong to their nearest such package.
"""

import runpy
from collections import defaultdict
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"
RESOURCES = runpy.run_path(str(HERE / "voicemap" / "resources.py"))
NPM_FILES, MAP_BUNDLE = RESOURCES["NPM_FILES"], RESOURCES["MAP_BUNDLE"]

missing = [name for name in NPM_FILES if not (WEB / name).is_file()]
if missing:
    raise SystemExit("web/node_modules is incomplete (" + ", ".join(missing[:3]) + "): run "
                     "scripts/setup, or `npm ci` in web/, before building voicemap")
if not all((WEB / name).is_file() for name in MAP_BUNDLE):
    raise SystemExit(f"web/{MAP_BUNDLE[0]} is missing: run scripts/setup, or `npm run bundle` "
                     "in web/, before building voicemap")

shipped = [*(WEB / name for name in (*NPM_FILES, *MAP_BUNDLE)),
           *(p for d in ("templates", "static", "translations")
             for p in sorted((WEB / d).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".mo")]
web_data: dict[str, list[str]] = defaultdict(list)
for path in shipped:
    parts = path.relative_to(WEB).parts[:-1]
    depth = next((i for i, part in enumerate(parts) if not part.isidentifier()), len(parts))
    package = ".".join(("voicemap.web", *parts[:depth]))
    web_data[package].append(str(Path(*path.relative_to(WEB).parts[depth:])))

setup(
    packages=sorted({*find_packages(include=["voicemap", "voicemap.*"]), *web_data}),
    package_dir={"voicemap.web": "web"},
    package_data={"voicemap.migrations": ["README", "script.py.mako"], **web_data},
)
