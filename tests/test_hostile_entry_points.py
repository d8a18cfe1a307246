"""Every entry point keeps the inference CLI's promises (latentsync/command_line.py): a user error is exit 2 with
one `error:` line naming the input, checked before any model loads; nothing is created; inputs stay
byte-identical.

The corpus runs each command line in-process (fast; the failures come before any model loads) across the
batch mode, the trainers, data processing, every eval CLI and the app; child processes cover what needs
one: a full disk (a file-size limit) and SIGTERM to a data-processing run with worker processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT
from tests.inference_fixtures import cli_args, face_clip
from tests.training_fixtures import make_clips


def digests(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="module")
def world(tmp_path_factory, ckpts):
    """inputs/ (never to change), out/ (must stay empty), data/ (training clips), raw/ (data processing)."""
    root = tmp_path_factory.mktemp("hostile_entry_points")
    inputs = root / "inputs"
    inputs.mkdir()
    video, audio = face_clip(inputs, "clip", 0.8)
    make_clips(inputs / "train", 3, seed=0)
    make_clips(inputs / "val", 2, seed=100)
    (inputs / "raw").mkdir()
    shutil.copy(video, inputs / "raw" / "clip.mp4")
    (inputs / "empty_raw").mkdir()
    (inputs / "videos").mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(video, inputs / "videos" / name)
    (inputs / "one_video").mkdir()
    shutil.copy(video, inputs / "one_video" / "a.mp4")
    (inputs / "a_file.txt").write_text("not a folder\n")
    (inputs / "empty.txt").write_text("")
    (inputs / "corrupt.pt").write_bytes(os.urandom(3000))
    (inputs / "folder.json").mkdir()
    files = {"video": video, "audio": audio, "inputs": inputs, "out": root / "out", "ckpts": ckpts}
    (root / "out").mkdir()
    return files


def batch_file(world, name: str, content: str | bytes) -> Path:
    path = world["inputs"] / "batches" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def row(world, output: str, **extra) -> dict:
    return {"video": str(world["video"]), "audio": str(world["audio"]), "output": output, **extra}


def batch_cases(world) -> dict:
    from scripts import inference

    out = world["out"]
    base = [a for a in cli_args(world["ckpts"], "v", "a", "o") if a not in ("v", "a", "o")
            and a not in ("--video_path", "--audio_path", "--video_out_path")]
    dup = [row(world, str(out / "same.mp4")), row(world, str(out / "other.mp4")), row(world, str(out / "same.mp4"))]
    spelled = [row(world, str(out / "x.mp4")), row(world, str(out / "sub" / ".." / "x.mp4"))]
    header = "video,audio,output\n"
    cases = {
        "batch: duplicate outputs": (json.dumps(dup), "jobs.json", "row 1 and row 3 both write"),
        "batch: duplicate outputs spelled differently": (json.dumps(spelled), "jobs.json", "both write"),
        "batch: invalid JSON": ('[{"video": "a.mp4",\n  "audio": }]', "jobs.json", "line 2 column"),
        "batch: JSON bare number": ("42", "jobs.json", "list of objects, got a number"),
        "batch: JSON one object": (json.dumps(row(world, str(out / "o.mp4"))), "jobs.json", "wrap it in [ ]"),
        "batch: JSON row not an object": (json.dumps([row(world, str(out / "o.mp4")), "x.mp4"]), "jobs.json",
                                          "row 2"),
        "batch: JSON null path": (json.dumps([{**row(world, str(out / "o.mp4")), "audio": None}]), "jobs.json",
                                  "audio must be a path"),
        "batch: empty JSON list": ("[]", "jobs.json", "no rows"),
        "batch: CSV empty cell": (header + f"{world['video']},,{out / 'o.mp4'}\n", "jobs.csv",
                                  "the audio cell is empty; give an audio file"),
        "batch: CSV short row": (header + f"{world['video']}\n", "jobs.csv", "row 1 (line 2)"),
        "batch: CSV header without output": ("video,audio\nv.mp4,a.wav\n", "jobs.csv", "lacks output"),
        "batch: CSV too many cells": (header + f"{world['video']},{world['audio']},{out / 'o.mp4'},extra\n",
                                      "jobs.csv", "4 cells"),
        "batch: CSV unclosed quote": (header + f'"{world["video"]},{world["audio"]},o.mp4\n', "jobs.csv",
                                      "not valid CSV"),
        "batch: CSV not UTF-8": (b"video,audio,output\n\xff\xfe\xfa,b,c.mp4\n", "jobs.csv", "not UTF-8"),
        "batch: CSV header only": (header, "jobs.csv", "no rows"),
    }
    built = {}
    for i, (name, (content, filename, message)) in enumerate(cases.items()):
        path = batch_file(world, f"{i:02d}_{filename}", content)
        built[name] = (inference.main, base + ["--batch", str(path)], message)
    built["batch: file is a folder"] = (inference.main, base + ["--batch", str(world["inputs"] / "folder.json")],
                                        "is a folder")
    single = cli_args(world["ckpts"], world["video"], world["audio"], out / "o.mp4")
    built["inference: device tpu"] = (inference.main, single[:single.index("--device")] + ["--device", "tpu"]
                                      + single[single.index("--device") + 2:], "--device 'tpu'")
    built["inference: debug video is the input video"] = (inference.main, single + ["--debug_video", str(world["video"])],
                                                          "refusing to overwrite")
    built["inference: debug video is the output"] = (inference.main, single + ["--debug_video", str(out / "o.mp4")],
                                                     "refusing to overwrite")
    built["inference: debug video is a folder"] = (inference.main, single + ["--debug_video", str(out)], "is a folder")
    built["inference: unknown occlusion"] = (inference.main, single + ["--occlusion", "sometimes"], "--occlusion")
    valid = batch_file(world, "valid.json", json.dumps([row(world, str(out / "v.mp4"))]))
    built["batch: --debug_video with --batch"] = (inference.main, base + ["--batch", str(valid), "--debug_video",
                                                                          str(out / "d.mp4")], "--debug_video")
    return built


def training_cases(world) -> dict:
    from scripts import train_syncnet, train_unet

    inputs, out, ckpts = world["inputs"], world["out"], world["ckpts"]
    (inputs / "lists").mkdir(exist_ok=True)
    listed = inputs / "lists" / "train.txt"
    listed.write_text("\n".join(str(p) for p in sorted((inputs / "train").glob("*.mp4"))) + "\n")
    base = ["--config_path", "configs/syncnet/tiny.yaml", f"data.train_data_dir={inputs / 'train'}",
            f"data.val_data_dir={inputs / 'val'}", f"data.train_output_dir={out / 'train'}",
            f"data.audio_mel_cache_dir={out / 'mel'}", "data.batch_size=2", "data.num_val_samples=4",
            "run.max_train_steps=1"]
    sync, unet = train_syncnet.run, train_unet.run
    return {
        "train_syncnet: missing config": (sync, base + ["--config_path", "configs/syncnet/nope.yaml"], "not found"),
        "train_syncnet: batch size not a number": (sync, base + ["data.batch_size=abc"], "data.batch_size"),
        "train_syncnet: malformed override": (sync, base + ["data.batch_size=[1,"], "overrides"),
        "train_syncnet: override without =": (sync, base + ["batch_size"], "key=value"),
        "train_syncnet: unknown flag": (sync, base + ["--bogus"], "--bogus"),
        "train_syncnet: missing file list": (sync, base + [f"data.train_fileslist={inputs / 'nope.txt'}"],
                                             "file list not found"),
        "train_syncnet: empty file list": (sync, base + [f"data.train_fileslist={inputs / 'empty.txt'}"],
                                           "no .mp4 clips"),
        "train_syncnet: missing data folder": (sync, base + [f"data.train_data_dir={inputs / 'nope'}"],
                                               "data folder not found"),
        "train_syncnet: missing resume checkpoint": (sync, base + [f"ckpt.resume_ckpt_path={inputs / 'no.pt'}"],
                                                     "ckpt.resume_ckpt_path"),
        "train_syncnet: corrupt resume checkpoint": (sync, base + [f"ckpt.resume_ckpt_path={inputs / 'corrupt.pt'}"],
                                                     "corrupt.pt"),
        "train_syncnet: U-Net checkpoint as resume": (sync, base + [f"ckpt.resume_ckpt_path={ckpts['unet']}"],
                                                      "unet"),
        "train_syncnet: output folder is a file": (sync, base + [f"data.train_output_dir={inputs / 'a_file.txt'}"],
                                                   "a_file.txt"),
        "train_syncnet: batch larger than the data": (sync, base + ["data.batch_size=50"], "data.batch_size=50"),
        "train_syncnet: file list in use": (sync, base + [f"data.train_fileslist={listed}", "data.batch_size=9"],
                                            "lower the batch size"),
        "train_unet: missing config": (unet, ["--unet_config_path", "configs/unet/nope.yaml"], "not found"),
        "train_unet: bad override": (unet, ["--unet_config_path", "configs/unet/tiny.yaml", "data.batch_size=two",
                                            f"data.train_output_dir={out / 'unet'}"], "data.batch_size"),
    }


def data_processing_cases(world) -> dict:
    from data_processing.cli import main

    inputs, out = world["inputs"], world["out"]
    raw = ["--input_dir", str(inputs / "raw"), "--output_root", str(out / "dp"), "--no_progress"]
    return {
        "data: input folder missing": (main, ["--input_dir", str(inputs / "nope"), "--output_root", str(out / "dp")],
                                       "not found"),
        "data: input folder is a file": (main, ["--input_dir", str(inputs / "a_file.txt"), "--output_root",
                                                str(out / "dp")], "is a file"),
        "data: input folder without videos": (main, ["--input_dir", str(inputs / "empty_raw"), "--output_root",
                                                     str(out / "dp")], "no videos"),
        "data: output root is a file": (main, ["--input_dir", str(inputs / "raw"), "--output_root",
                                               str(inputs / "a_file.txt" / "sub")], "is a file"),
        "data: output root inside the input": (main, ["--input_dir", str(inputs / "raw"), "--output_root",
                                                      str(inputs / "raw" / "out")], "overlaps"),
        "data: malformed YAML override": (main, raw + ["segment.max_seconds=[1,"], "overrides"),
        "data: setting of the wrong type": (main, raw + ["segment.min_seconds=abc"], "segment.min_seconds"),
        "data: unknown step": (main, raw + ["--steps", "broken,polish"], "polish"),
        "data: zero workers": (main, raw + ["--num_workers", "0"], "--num_workers"),
        "data: shard out of range": (main, raw + ["--shard_index", "3", "--num_shards", "2"], "--shard_index"),
        "data: missing config": (main, raw + ["--config", str(inputs / "nope.yaml")], "not found"),
        "data: config that is not YAML": (main, raw + ["--config", str(inputs / "corrupt.pt")], "YAML"),
        "data: later step before its input": (main, raw + ["--steps", "segment"], "has not been run"),
    }


def eval_cases(world) -> dict:
    from eval import draw_syncnet_lines, eval_fvd, eval_sync_conf, eval_syncnet_acc, inference_videos

    inputs, out, ckpts = world["inputs"], world["out"], world["ckpts"]
    acc = ["--config_path", "configs/syncnet/tiny.yaml", "--ckpt_path", str(ckpts["syncnet"]), "--device", "cpu",
           f"data.val_data_dir={inputs / 'val'}"]
    fvd = ["--real_videos_dir", str(inputs / "videos"), "--fake_videos_dir", str(inputs / "videos"), "--device", "cpu"]
    lists = ["--video_fileslist", str(inputs / "empty.txt"), "--audio_fileslist", str(inputs / "empty.txt")]
    return {
        "syncnet_acc: missing checkpoint": (eval_syncnet_acc.main, acc + ["--ckpt_path", str(inputs / "no.pt")],
                                            "no.pt"),
        "syncnet_acc: device tpu": (eval_syncnet_acc.main, acc + ["--device", "tpu"], "--device"),
        "syncnet_acc: cuda without CUDA": (eval_syncnet_acc.main, acc + ["--device", "cuda:7"], "cuda"),
        "syncnet_acc: --json_out is a folder": (eval_syncnet_acc.main, acc + ["--json_out", str(inputs)],
                                                "is a folder"),
        "syncnet_acc: --json_out under a file": (eval_syncnet_acc.main,
                                                 acc + ["--json_out", str(inputs / "a_file.txt" / "r.json")],
                                                 "a_file.txt"),
        "syncnet_acc: bad setting": (eval_syncnet_acc.main, acc + ["data.num_val_samples=many"], "num_val_samples"),
        "syncnet_acc: empty validation list": (eval_syncnet_acc.main,
                                               acc + [f"data.val_fileslist={inputs / 'empty.txt'}"], "no .mp4 clips"),
        "sync_conf: missing --videos_dir": (eval_sync_conf.main, ["--videos_dir", str(inputs / "nope"),
                                                                  "--random_weights"], "--videos_dir"),
        "sync_conf: missing --video_path": (eval_sync_conf.main, ["--video_path", str(inputs / "nope.mp4"),
                                                                  "--random_weights"], "not found"),
        "sync_conf: --json_out under a file": (eval_sync_conf.main,
                                               ["--video_path", str(world["video"]), "--random_weights",
                                                "--json_out", str(inputs / "a_file.txt" / "r.json")], "a_file.txt"),
        "sync_conf: missing SyncNet model": (eval_sync_conf.main, ["--video_path", str(world["video"]),
                                                                   "--initial_model", str(inputs / "no.model")],
                                             "no.model"),
        "sync_conf: device tpu": (eval_sync_conf.main, ["--video_path", str(world["video"]), "--device", "tpu"],
                                  "--device"),
        "fvd: missing I3D model": (eval_fvd.main, fvd + ["--i3d_path", str(inputs / "no_i3d.pt")], "I3D"),
        "fvd: corrupt I3D model": (eval_fvd.main, fvd + ["--i3d_path", str(inputs / "corrupt.pt")], "I3D"),
        "fvd: missing real folder": (eval_fvd.main, fvd + ["--real_videos_dir", str(inputs / "nope")],
                                     "--real_videos_dir"),
        "fvd: one video only": (eval_fvd.main, fvd + ["--fake_videos_dir", str(inputs / "one_video")],
                                "at least 2"),
        "inference_videos: missing list": (inference_videos.main, ["--video_fileslist", str(inputs / "nope.txt"),
                                                                   "--audio_fileslist", str(inputs / "nope.txt"),
                                                                   "--output_dir", str(out / "iv")], "not found"),
        "inference_videos: empty list": (inference_videos.main, lists + ["--output_dir", str(out / "iv")],
                                         "lists no files"),
        "draw_lines: bad --out": (draw_syncnet_lines.main, ["--line", f"a={ckpts['syncnet']}", "--out",
                                                            str(out / "chart.txt")], "extension"),
        "draw_lines: missing checkpoint": (draw_syncnet_lines.main, ["--line", f"a={inputs / 'no.pt'}", "--out",
                                                                     str(out / "chart.png")], "no.pt"),
    }


def app_cases(world, busy_port: int) -> dict:
    import gradio_app

    ckpts = world["ckpts"]
    ok = ["--unet_config_path", "configs/unet/tiny.yaml", "--inference_ckpt_path", str(ckpts["unet"]),
          "--vae_path", str(ckpts["vae"]), "--whisper_path", str(ckpts["whisper"]), "--device", "cpu",
          "--no_examples", "--port", "0"]
    main = gradio_app.main
    return {
        "app: missing U-Net checkpoint": (main, ok + ["--inference_ckpt_path", str(world["inputs"] / "no.pt")],
                                          "U-Net checkpoint not found"),
        "app: missing config": (main, ok + ["--unet_config_path", "configs/unet/nope.yaml"], "U-Net config"),
        "app: missing VAE": (main, ok + ["--vae_path", str(world["inputs"] / "no_vae")], "VAE"),
        "app: device tpu": (main, ok + ["--device", "tpu"], "--device"),
        "app: cuda without CUDA": (main, ok + ["--device", "cuda:9"], "cuda"),
        "app: fp16 on the CPU": (main, ok + ["--dtype", "fp16"], "fp16"),
        "app: port out of range": (main, ok + ["--port", "99999"], "--port 99999"),
        "app: port in use": (main, ok + ["--port", str(busy_port)], f":{busy_port}"),
        "app: unknown host": (main, ok + ["--host", "no-such-host.invalid"], "--host"),
        "app: negative upload limit": (main, ok + ["--max_upload_mb", "-5"], "--max_upload_mb"),
    }


def run_case(main, argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_hostile_corpus_across_entry_points(world, capsys):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    busy_port = listener.getsockname()[1]
    before = digests(world["inputs"])
    corpus = {**batch_cases(world), **training_cases(world), **data_processing_cases(world), **eval_cases(world),
              **app_cases(world, busy_port)}
    before = digests(world["inputs"])  # the cases wrote their batch files and lists
    assert len(corpus) >= 60
    failures = []
    try:
        for name, (main, argv, message) in corpus.items():
            code = run_case(main, argv)
            err = capsys.readouterr().err
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if code != 2 or "Traceback" in err or len(lines) != 1 or not lines[0].startswith("error: "):
                failures.append(f"{name}: exit {code}, stderr {lines}")
            elif message not in lines[0]:
                failures.append(f"{name}: {message!r} not in {lines[0]!r}")
            if tree(world["out"]):
                failures.append(f"{name}: left {tree(world['out'])}")
                shutil.rmtree(world["out"])
                world["out"].mkdir()
            if any(p.name.startswith("train-") for p in world["inputs"].rglob("*")):
                failures.append(f"{name}: made a run folder")
    finally:
        listener.close()
    assert not failures, "\n".join(failures)
    assert digests(world["inputs"]) == before
    assert sorted(p.name for p in world["inputs"].parent.iterdir()) == ["inputs", "out"]  # nothing beside them


# ----------------------------------------------------------------------------------------------- batch file


def test_batch_file_accepts_excel_csv_with_bom_spaces_and_blank_lines(tmp_path):
    from latentsync.cli.batch_file import read_batch

    path = tmp_path / "jobs.csv"
    path.write_bytes("\ufeff video , audio ,output, face_index \r\n a.mp4 , b.wav , c.mp4 , 1 \r\n\r\n".encode())
    assert read_batch(path) == [{"video": "a.mp4", "audio": "b.wav", "output": "c.mp4", "face_index": "1"}]
    path = tmp_path / "jobs.json"
    path.write_bytes("\ufeff".encode() + json.dumps([{"video": "a.mp4", "audio": "b.wav", "output": "c.mp4"}]).encode())
    assert read_batch(path)[0]["output"] == "c.mp4"


# ----------------------------------------------------------------------------------------------- warnings


def test_few_frames_with_a_face_warn_on_stderr_and_in_the_app(ckpts, tmp_path, capsys):
    import gradio_app
    from latentsync.api import LipsyncOptions
    from scripts import inference
    from tests.inference_fixtures import tiny_options

    video, audio = face_clip(tmp_path, "mostly_blank", 0.8, blank_frames=tuple(range(6, 20)))
    out = tmp_path / "out.mp4"
    assert inference.main(cli_args(ckpts, video, audio, out)) == 0
    err = capsys.readouterr().err
    assert out.is_file()
    warning = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and "only" in warning[0] and "of 20 frames" in warning[0], err

    said = []
    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)))
    try:
        _, summary = service.run(str(video), str(audio), on_warning=said.append, inference_steps=2)
    finally:
        service.close()
    assert len(said) == 1 and "of 20 frames" in said[0]
    assert summary.splitlines()[-1] == f"warning: {said[0]}"  # and under the result
    assert "warning:" in capsys.readouterr().err  # the server's console has it too

    video, audio = face_clip(tmp_path, "face", 0.8)
    assert inference.main(cli_args(ckpts, video, audio, tmp_path / "fine.mp4")) == 0
    assert "warning:" not in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- eval


def test_syncnet_accuracy_scores_distinct_samples_and_says_where_they_came_from(world, tmp_path, capsys):
    from eval import eval_syncnet_acc
    from latentsync.training.settings import load_training_config

    config = load_training_config("configs/syncnet/tiny.yaml", [
        f"data.val_data_dir={world['inputs'] / 'val'}", "data.batch_size=2", "data.num_workers=0",
        f"data.audio_mel_cache_dir={tmp_path / 'mel'}"])
    stats: dict = {}
    batches = eval_syncnet_acc.dataset_batches(config, "cpu", stats)
    passes = [next(batches) for _ in range(4)]  # batch_size 2 = the whole split per pass
    assert stats == {"clips": 2, "passes": 4}
    for i in range(4):
        for j in range(i):  # each pass draws new windows and pairings, so the scored samples differ
            assert not torch.equal(torch.cat([passes[i][0].flatten(), passes[i][1].flatten()]),
                                   torch.cat([passes[j][0].flatten(), passes[j][1].flatten()])), (j, i)
    pairs = {hashlib.sha256(visual[k].numpy().tobytes() + mel[k].numpy().tobytes()).hexdigest()
             for visual, mel, _ in passes for k in range(len(visual))}
    assert len(pairs) >= 7  # of 8 (random windows of two 2.4 s clips may meet once by chance)

    out = tmp_path / "acc.json"
    code = eval_syncnet_acc.main(["--config_path", "configs/syncnet/tiny.yaml", "--ckpt_path",
                                  str(world["ckpts"]["syncnet"]), "--device", "cpu", "--json_out", str(out),
                                  f"data.val_data_dir={world['inputs'] / 'val'}", "data.num_val_samples=8",
                                  "data.batch_size=2", f"data.audio_mel_cache_dir={tmp_path / 'mel'}"])
    assert code == 0
    assert "8 samples from 2 validation clip(s) in 4 pass(es)" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["num_samples"] == 8 and saved["validation_clips"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# ----------------------------------------------------------------------------------------------- child processes


def _child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}


STAND_INS = ["models.syncnet.factory=tests.data_processing_fixtures:beat_syncnet",
             "models.face_detector.factory=tests.data_processing_fixtures:centre_face_boxes",
             "models.hyperiqa.factory=tests.data_processing_fixtures:sharpness_quality"]


def _published_without_record(root: Path, step: str, folder: str) -> list[str]:
    from data_processing.manifest import read_manifest

    recorded = {out for record in read_manifest(root / "manifests" / step).values() for out in record["outputs"]}
    published = {p.relative_to(root / folder).as_posix() for p in (root / folder).rglob("*.mp4")
                 if ".tmp" not in p.parts} if (root / folder).exists() else set()
    return sorted(published - recorded)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def test_data_processing_full_disk_stops_with_one_line_and_records_no_error(raw_dir, tmp_path):
    from data_processing.manifest import read_manifest

    shutil.copytree(raw_dir, tmp_path / "raw")
    before = digests(tmp_path / "raw")
    argv = [sys.executable, "-m", "data_processing", "--input_dir", str(tmp_path / "raw"), "--steps",
            "broken,resample", "--no_progress", "--num_workers", "1", *STAND_INS]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "disk is full" in lines[0], lines
    records = read_manifest(tmp_path / "manifests" / "resample")
    assert all(r["status"] != "error" for r in records.values()), records  # redone on the next run, not skipped
    assert _published_without_record(tmp_path, "resample", "resampled") == []
    assert not (tmp_path / "resampled" / ".tmp").exists()
    assert digests(tmp_path / "raw") == before


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_stops_data_processing_and_its_workers(raw_dir, tmp_path):
    shutil.copytree(raw_dir, tmp_path / "raw")
    before = digests(tmp_path / "raw")
    argv = [sys.executable, "-m", "data_processing", "--input_dir", str(tmp_path / "raw"), "--steps",
            "broken,resample", "--no_progress", "--num_workers", "2", *STAND_INS]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    scratch = tmp_path / "resampled" / ".tmp"
    deadline = time.time() + 180
    while time.time() < deadline and not (scratch.exists() and any(scratch.rglob("*.*"))):
        time.sleep(0.1)  # until a worker is writing
    assert scratch.exists(), "the resample step never started"
    workers = [c for c in _children(proc.pid) if _alive(c)]
    assert workers, "no worker processes"
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.time() - sent < 20
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err and b"stopped by SIGTERM" in err
    time.sleep(1)
    assert [w for w in workers if _alive(w)] == [], "workers outlived the parent"
    assert _published_without_record(tmp_path, "resample", "resampled") == []
    assert not scratch.exists()
    assert digests(tmp_path / "raw") == before


@pytest.mark.parametrize("wrapper, overrides", [
    ("train_syncnet.sh", ["data.batch_size=abc"]),
    ("train_unet.sh", ["data.batch_size=two"]),
])
def test_training_wrappers_pass_the_trainers_exit_code_through(tmp_path, wrapper, overrides):
    env = {**_child_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "CONFIG": "configs/syncnet/tiny.yaml" if "syncnet" in wrapper else "configs/unet/tiny.yaml"}
    proc = subprocess.run(["bash", str(REPO_ROOT / wrapper), *overrides, f"data.train_output_dir={tmp_path / 'out'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "data.batch_size" in lines[0], lines
    assert not (tmp_path / "out").exists()
