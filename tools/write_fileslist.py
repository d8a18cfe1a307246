"""Write a training file list: every *.mp4 under one or more dataset folders, one path per line.

    python -m tools.write_fileslist --out data/fileslist.txt data/VoxCeleb2/high_visual_quality/train \
        data/HDTF/high_visual_quality/train
    python -m tools.write_fileslist --out data/fileslist.txt --check data/synthetic/train   # drop unreadable clips
    python -m tools.write_fileslist --out data/val.txt --min_frames 48 data/synthetic/val

Use the list with `data.train_fileslist=data/fileslist.txt` (it takes precedence over data.train_data_dir).
`--check` opens every clip (frame count, audio track) and leaves out those a dataset would skip, listing why.
The list is written to a temp file and renamed into place, so a running training never reads half a list.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from latentsync.data.clips import ClipReader, ClipUnusable, gather_video_paths

logger = logging.getLogger("write_fileslist")


def clip_problem(path: str, min_frames: int, fps: float = 25.0) -> str | None:
    """Why a dataset could not use this clip, or None if it can (decodable, long enough, has audio)."""
    from latentsync.utils.media import MediaError, read_audio

    try:
        frames = len(ClipReader(path, fps))
    except ClipUnusable as exc:
        return str(exc)
    if frames < min_frames:
        return f"only {frames} frames, need {min_frames}"
    try:
        read_audio(path)
    except MediaError as exc:
        return f"no usable audio ({exc})"
    return None


def collect(dirs: list[str], check: bool, min_frames: int, absolute: bool) -> tuple[list[str], dict[str, str]]:
    """(usable paths, {skipped path: reason}) for all *.mp4 under `dirs`, in folder order then sorted."""
    paths, skipped = [], {}
    for folder in dirs:
        found = gather_video_paths(folder)
        logger.info("%s: %d clips", folder, len(found))
        for path in tqdm(found, disable=not check, desc=f"checking {folder}"):
            problem = clip_problem(path, min_frames) if check else None
            if problem:
                skipped[path] = problem
            else:
                paths.append(os.path.abspath(path) if absolute else path)
    return paths, skipped


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{line}\n" for line in lines)
    os.replace(tmp, path)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", help="dataset folders, searched recursively for *.mp4")
    parser.add_argument("--out", required=True, type=Path, help="file list to write")
    parser.add_argument("--append", action="store_true", help="add to an existing list instead of replacing it")
    parser.add_argument("--check", action="store_true", help="open every clip and leave out unusable ones")
    parser.add_argument("--min_frames", type=int, default=48,
                        help="with --check: minimum frames (U-Net samples need 3 x 16, SyncNet 2 x 16)")
    parser.add_argument("--absolute", action="store_true", help="write absolute paths")
    args = parser.parse_args(argv)
    for folder in args.dirs:
        if not Path(folder).is_dir():
            parser.error(f"not a folder: {folder}")
    paths, skipped = collect(args.dirs, args.check, args.min_frames, args.absolute)
    for path, reason in skipped.items():
        logger.warning("left out %s: %s", path, reason)
    existing = args.out.read_text().splitlines() if args.append and args.out.is_file() else []
    write_lines(args.out, existing + paths)
    logger.info("wrote %d clips to %s (%d left out)", len(existing) + len(paths), args.out, len(skipped))
    return 0 if paths or existing else 1


if __name__ == "__main__":
    sys.exit(main())
