"""Everything a user can get wrong ends as exit 2 with one clear line; inputs are never touched.

Each case runs the real command line (in-process for speed, in a child process where a signal, a file-size
limit or the console itself is the subject) and checks: the exit code, one `error:` line and no traceback,
no output and no partial file, and every input file byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import scripts.inference as cli
from tests.helpers import REPO_ROOT, write_video
from tests.inference_fixtures import cli_args, decode_all, face_clip


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    video, audio = face_clip(folder, "clip", 0.8)
    files = {"video": video, "audio": audio}
    (folder / "text.mp4").write_text("just text " * 50)
    files["text_video"] = folder / "text.mp4"
    (folder / "empty.mp4").write_bytes(b"")
    files["empty_video"] = folder / "empty.mp4"
    (folder / "truncated.wav").write_bytes(b"RIFF")
    files["truncated_audio"] = folder / "truncated.wav"
    files["no_audio"] = write_video(folder / "no_audio.mp4", [decode_all(video)[:5]], fps=25)
    blank = np.full((12, 320, 240, 3), 90, dtype=np.uint8)
    files["no_face"] = write_video(folder / "no_face.mp4", [blank], fps=25, audio_path=audio, audio_duration=0.48)
    (folder / "a_folder.mp4").mkdir()
    files["folder_video"] = folder / "a_folder.mp4"
    (folder / "video_link.mp4").symlink_to(video)
    files["video_link"] = folder / "video_link.mp4"
    (folder / "corrupt_whisper.pt").write_bytes(os.urandom(4096))
    files["corrupt_whisper"] = folder / "corrupt_whisper.pt"
    (folder / "corrupt_unet.pt").write_bytes(b"PK\x03\x04" + os.urandom(2048))
    files["corrupt_unet"] = folder / "corrupt_unet.pt"
    (folder / "outputs").mkdir()
    files["folder"] = folder
    (folder / "jobs.json").write_text(json.dumps([{"video": str(video), "audio": str(audio),
                                                   "output": str(folder / "outputs" / "row.mp4")}]))
    files["batch"] = folder / "jobs.json"
    return files


def digests(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and "outputs" not in p.parts}


def with_option(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
        return argv
    return argv + [flag, value]


def cases(ckpts, m) -> dict:
    out = m["folder"] / "outputs" / "out.mp4"
    ok = cli_args(ckpts, m["video"], m["audio"], out)
    args = lambda video=m["video"], audio=m["audio"], target=out: cli_args(ckpts, video, audio, target)  # noqa: E731
    batch = [a for a in ok if a not in (str(m["video"]), str(m["audio"]), str(out))
             and a not in ("--video_path", "--audio_path", "--video_out_path")] + ["--batch", str(m["batch"])]
    return {
        "missing video": (args(video=m["folder"] / "missing.mp4"), "not found"),
        "video is text": (args(video=m["text_video"]), "cannot read video"),
        "video is empty": (args(video=m["empty_video"]), "video"),
        "video is a folder": (args(video=m["folder_video"]), "video"),
        "missing audio": (args(audio=m["folder"] / "missing.wav"), "not found"),
        "truncated audio": (args(audio=m["truncated_audio"]), "audio"),
        "audio without audio stream": (args(audio=m["no_audio"]), "no audio stream"),
        "no face anywhere": (args(video=m["no_face"]), "no face"),
        "output is the video": (args(target=m["video"]), "refusing to overwrite an input"),
        "output is the audio": (args(target=m["audio"].with_suffix(".wav")), "extension"),
        "output resolves to the video via ..": (args(target=m["folder"] / "outputs" / ".." / m["video"].name),
                                                "refusing to overwrite an input"),
        "output is a symlink to the video": (args(target=m["video_link"]), "refusing to overwrite an input"),
        "output is a folder": (args(target=m["folder"] / "outputs"), "is a folder"),
        "output without extension": (args(target=m["folder"] / "outputs" / "result"), "extension"),
        "output as text file": (args(target=m["folder"] / "outputs" / "result.txt"), ".mp4"),
        "zero steps": (with_option(ok, "--inference_steps", "0"), "--inference_steps"),
        "negative steps": (with_option(ok, "--inference_steps", "-3"), "--inference_steps"),
        "steps not a number": (with_option(ok, "--inference_steps", "many"), "--inference_steps"),
        "guidance nan": (with_option(ok, "--guidance_scale", "nan"), "--guidance_scale"),
        "guidance huge": (with_option(ok, "--guidance_scale", "1e9"), "--guidance_scale"),
        "seed not an integer": (with_option(ok, "--seed", "1.5"), "--seed"),
        "checkpoint for another config": (with_option(ok, "--unet_config_path", "configs/unet/stage2.yaml"), "tiny"),
        "corrupt U-Net checkpoint": (with_option(ok, "--inference_ckpt_path", str(m["corrupt_unet"])), "checkpoint"),
        "corrupt Whisper checkpoint": (with_option(ok, "--whisper_path", str(m["corrupt_whisper"])), "hisper"),
        "missing VAE": (with_option(ok, "--vae_path", str(m["folder"] / "no_vae")), "VAE"),
        "fp16 on CPU": (ok + ["--dtype", "fp16"], "fp16"),
        "unknown scheduler": (ok + ["--scheduler", "euler"], "--scheduler"),
        "unknown face detector": (ok + ["--face_detector", "haar"], "detector"),
        "unknown face choice": (ok + ["--face_choice", "loudest"], "--face_choice"),
        "position without a position": (ok + ["--face_choice", "position"], "--face_position"),
        "position not two numbers": (ok + ["--face_position", "left"], "--face_position"),
        "negative face index": (ok + ["--face_index", "-1"], "--face_index"),
        "face index with another choice": (ok + ["--face_choice", "tracked", "--face_index", "1"], "only applies"),
        "shards without a batch": (ok + ["--shard_index", "0", "--num_shards", "2"], "--batch"),
        "shard index out of range": (batch + ["--shard_index", "2", "--num_shards", "2"], "--shard_index"),
        "zero shards": (batch + ["--num_shards", "0"], "--num_shards"),
        "bad face choice in a batch": (batch + ["--face_choice", "position"], "--face_position"),
    }


def test_hostile_corpus_exits_2_with_one_line_and_touches_nothing(ckpts, media, capsys):
    before = digests(media["folder"])
    corpus = cases(ckpts, media)
    assert len(corpus) >= 20
    for name, (argv, message) in corpus.items():
        with pytest.raises(SystemExit) as stopped:
            sys.exit(cli.main(argv))
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert stopped.value.code == cli.EXIT_BAD_INPUT, f"{name}: exit {stopped.value.code}\n{err}"
        assert "Traceback" not in err, f"{name}: {err}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {lines}"
        assert message in lines[0], f"{name}: {lines[0]}"
        leftovers = [p.name for p in (media["folder"] / "outputs").iterdir()]
        assert not leftovers, f"{name}: left {leftovers}"
    assert digests(media["folder"]) == before


def test_missing_output_folder_is_created(ckpts, media, tmp_path):
    out = tmp_path / "new" / "deeper" / "out.mp4"
    assert cli.main(cli_args(ckpts, *([media["video"], media["audio"]]), out)) == cli.EXIT_OK
    assert out.is_file()


def test_bad_batch_rows_do_not_stop_the_others(ckpts, media, tmp_path, capsys):
    rows = [{"video": str(media["video"]), "audio": str(media["audio"]), "output": str(media["video"])},
            {"video": str(media["text_video"]), "audio": str(media["audio"]), "output": str(tmp_path / "b.mp4")},
            {"video": str(media["video"]), "audio": str(media["audio"]), "output": str(tmp_path / "ok.mp4")}]
    batch = tmp_path / "jobs.json"
    batch.write_text(json.dumps(rows))
    argv = cli_args(ckpts, media["video"], media["audio"], tmp_path / "x.mp4")
    for flag in ("--video_path", "--audio_path", "--video_out_path"):
        i = argv.index(flag)
        del argv[i : i + 2]
    before = digests(media["folder"])
    assert cli.main(argv + ["--batch", str(batch)]) == cli.EXIT_BAD_INPUT
    assert (tmp_path / "ok.mp4").exists() and not (tmp_path / "b.mp4").exists()
    assert "1 of 3 ok, 2 failed" in capsys.readouterr().out
    assert digests(media["folder"]) == before


def _child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}


def _no_partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".mp4")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_a_run_removes_the_partial_output(ckpts, tmp_path, sig):
    video, audio = face_clip(tmp_path, "long", 6.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = digests(tmp_path)
    argv = [sys.executable, "-m", "scripts.inference", *cli_args(ckpts, video, audio, out_dir / "o.mp4")]
    argv[argv.index("--inference_steps") + 1] = "20"  # long enough to be stopped in the middle
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not any(".partial" in p.name for p in out_dir.iterdir()):
        time.sleep(0.2)  # wait until the writer has started
    assert any(".partial" in p.name for p in out_dir.iterdir()), "the run never started writing"
    sent = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.time() - sent < 15, "the run did not stop within a few seconds"
    assert proc.returncode == 128 + sig, err.decode()
    assert b"Traceback" not in err and b"stopped" in err
    assert _no_partials(out_dir) == []
    assert digests(tmp_path) == {k: v for k, v in before.items()}


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # smaller than the output


def test_full_disk_is_one_clear_line_and_no_partial_file(ckpts, tmp_path):
    video, audio = face_clip(tmp_path, "clip", 2.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = digests(tmp_path)
    argv = [sys.executable, "-m", "scripts.inference", *cli_args(ckpts, video, audio, out_dir / "o.mp4")]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == cli.EXIT_BAD_INPUT, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and "o.mp4" in lines[0] and ("disk" in lines[0] or "size limit" in lines[0]), lines
    assert _no_partials(out_dir) == []
    assert digests(tmp_path) == before


def test_console_is_quiet_by_default_and_verbose_shows_native_logs(ckpts, tmp_path):
    video, audio = face_clip(tmp_path, "clip", 0.8)
    base = [sys.executable, "-m", "scripts.inference", *cli_args(ckpts, video, audio, tmp_path / "o.mp4")]
    quiet = subprocess.run(base, cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "W0000" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr, quiet.stderr
    assert "frames at 25 fps" in quiet.stdout
    (tmp_path / "o.mp4").unlink()
    loud = subprocess.run(base + ["--verbose"], cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True,
                          timeout=300)
    assert loud.returncode == 0
    assert len(loud.stderr) > len(quiet.stderr)  # the third-party messages are there when asked for

