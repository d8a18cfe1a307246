"""The videos an evaluation reads: the video files directly inside a folder, or one file as given."""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


def videos_in_folder(folder: str | Path) -> list[Path]:
    """The folder's videos sorted by name; FileNotFoundError when it is no folder or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    return videos


def list_videos(source: str | Path) -> list[Path]:
    """`[source]` for a file, else `videos_in_folder(source)`."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.exists():
        raise FileNotFoundError(f"no such video or folder: {source}")
    return videos_in_folder(source)
