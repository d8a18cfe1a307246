"""Gradio app: upload a video and an audio track, get the lip-synced video.

    python gradio_app.py                      # official checkpoints from checkpoints/
    python gradio_app.py --unet_config_path configs/unet/tiny.yaml --inference_ckpt_path DIR/unet.pt \
        --vae_path DIR/vae --whisper_path DIR/whisper.pt      # any other set of weights

One job runs at a time (a queue), uploads are bounded in size, each job works in its own temporary
folder that is removed afterwards, and models are loaded once and reused. Runs on CPU or GPU.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from omegaconf import OmegaConf  # noqa: E402

from latentsync.api import PRESETS, InputError, LipsyncOptions, build_pipeline, lipsync  # noqa: E402
from latentsync.config import CONFIG_DIR  # noqa: E402
from latentsync.pipelines.frame_schedule import LENGTH_MODES  # noqa: E402
from latentsync.utils.media import describe_streams, probe_video  # noqa: E402

APP = OmegaConf.load(CONFIG_DIR / "inference.yaml").app


class LipsyncService:
    """Loads the models on first use (once) and runs one job at a time."""

    def __init__(self, options: LipsyncOptions):
        self.options = options
        self._bundle = None
        self._lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="latentsync-app-"))

    def _pipeline(self):
        if self._bundle is None:
            self._bundle = build_pipeline(self.options)
        return self._bundle

    def check_upload(self, path: str | None, what: str) -> Path:
        if not path:
            raise InputError(f"please upload a {what} file")
        p = Path(path)
        size_mb = p.stat().st_size / 1e6
        if size_mb > APP.max_upload_mb:
            raise InputError(f"the {what} is {size_mb:.0f} MB; the limit is {APP.max_upload_mb} MB")
        return p

    def run(self, video: str | None, audio: str | None, steps: int, guidance: float, seed: int,
            length_mode: str, progress=None) -> str:
        video_path = self.check_upload(video, "video")
        audio_path = self.check_upload(audio, "audio")
        info = probe_video(video_path)
        if info.duration > APP.max_video_seconds:
            raise InputError(f"the video lasts {info.duration:.0f} s; this app accepts up to "
                             f"{APP.max_video_seconds} s (use scripts/inference.py for longer videos)")
        with self._lock:
            job_dir = Path(tempfile.mkdtemp(dir=self.workdir))
            out = job_dir / f"{video_path.stem}_lipsync.mp4"
            try:
                opts = {**vars(self.options), "inference_steps": int(steps), "guidance_scale": float(guidance),
                        "seed": int(seed), "length_mode": length_mode, "progress": False}
                lipsync(str(video_path), str(audio_path), str(out), pipeline_bundle=self._pipeline(), **opts)
            except BaseException:
                shutil.rmtree(job_dir, ignore_errors=True)
                raise
            # Keep only the latest result; gradio copies it to its own cache when serving it.
            for old in self.workdir.iterdir():
                if old != job_dir:
                    shutil.rmtree(old, ignore_errors=True)
            return str(out)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _playable_in_browser(video_path: str) -> bool:
    """gradio's check whether a video needs converting, done with our ffmpeg (gradio's needs ffprobe, which the
    imageio-ffmpeg binary we install does not include)."""
    codec = describe_streams(video_path).video_codec
    return (Path(video_path).suffix.lower(), codec) in {(".mp4", "h264"), (".mp4", "av1"), (".webm", "vp9"),
                                                         (".webm", "vp8"), (".ogg", "theora")}


def build_app(service: LipsyncService, default_steps: int | None = None):
    import gradio as gr
    from gradio import processing_utils

    if shutil.which("ffprobe") is None:
        processing_utils.video_is_playable = _playable_in_browser

    def run(video, audio, steps, guidance, seed, length_mode, progress=gr.Progress()):  # noqa: B008 (gradio's API)
        progress(0.05, desc="lip-syncing")
        try:
            return service.run(video, audio, steps, guidance, seed, length_mode)
        except InputError as exc:  # every bad input (upload, option, no face, ...): one clear message
            raise gr.Error(" ".join(str(exc).split())) from exc
        except Exception as exc:
            logging.getLogger("latentsync.app").exception("lip-sync failed")
            raise gr.Error(f"internal error ({type(exc).__name__}): {exc}; the server log has the details") from exc

    with gr.Blocks(title="LatentSync") as demo:
        gr.Markdown("# LatentSync\nUpload a talking-face video and the audio its lips should follow.")
        with gr.Row():
            with gr.Column():
                video_in = gr.Video(label="Input video", elem_id="video_in")
                audio_in = gr.Audio(label="Input audio", type="filepath", elem_id="audio_in")
                with gr.Row():
                    steps = gr.Slider(1, 50, value=default_steps or APP.default_steps, step=1, label="Inference steps",
                                      elem_id="steps")
                    guidance = gr.Slider(1.0, 3.0, value=APP.default_guidance, step=0.1, label="Guidance scale")
                with gr.Row():
                    seed = gr.Number(value=APP.default_seed, precision=0, label="Seed")
                    length_mode = gr.Dropdown(list(LENGTH_MODES), value="pingpong", label="When audio is longer")
                button = gr.Button("Lip-sync", variant="primary", elem_id="run")
            with gr.Column():
                video_out = gr.Video(label="Result", elem_id="video_out")
        button.click(run, [video_in, audio_in, steps, guidance, seed, length_mode], video_out,
                     concurrency_limit=1)
    demo.queue(max_size=8, default_concurrency_limit=1)
    return demo


def main(argv=None) -> None:
    d = LipsyncOptions()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("unet_config_path", "inference_ckpt_path", "vae_path", "device", "dtype", "face_detector"):
        p.add_argument(f"--{name}", default=None if name == "dtype" else getattr(d, name))  # dtype: the preset's
    p.add_argument("--whisper_path", default=None)
    p.add_argument("--preset", default="quality", choices=PRESETS, help="quality (official run) or fast")
    p.add_argument("--inference_steps", type=int, default=None, help="initial value of the steps slider")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public gradio.live link (needs internet)")
    p.add_argument("--verbose", action="store_true", help="show third-party native log messages (mediapipe, absl)")
    args = p.parse_args(argv)
    if not args.verbose:
        from latentsync.utils.native_logs import filter_native_logs

        filter_native_logs()
    options = LipsyncOptions.from_kwargs(**{k: v for k, v in vars(args).items()
                                            if k in LipsyncOptions.__dataclass_fields__ and v is not None})
    service = LipsyncService(options)
    try:
        build_app(service, options.inference_steps).launch(server_name=args.host, server_port=args.port, share=args.share,
                                  max_file_size=f"{APP.max_upload_mb}mb")
    finally:
        service.close()


if __name__ == "__main__":
    main()
