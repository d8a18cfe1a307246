"""Gradio app: upload a video and an audio track, get the lip-synced video.

    python gradio_app.py                      # official checkpoints from checkpoints/
    python gradio_app.py --unet_config_path configs/unet/tiny.yaml --inference_ckpt_path DIR/unet.pt \
        --vae_path DIR/vae --whisper_path DIR/whisper.pt      # any other set of weights
    python gradio_app.py --max_video_seconds 0 --max_upload_mb 500   # limits (0 = none), shown in the page

One job runs at a time (a queue), uploads are bounded in size, each job works in its own temporary
folder that is removed afterwards, and models are loaded once and reused (reloaded only when a job asks
for another sampler, precision, DeepCache setting or face detector). The page shows the run's real progress
(face pass per frame, denoising per step, writing), has an "Advanced" section with every run option, and
offers a generated demo clip as an example. "Preview faces" runs the face pass alone over the first seconds
and shows what a run would edit (latentsync/pipelines/face_preview.py). "Prepare video" puts the upload's face
pass and VAE moments into the reuse cache, so every later run on it (with any audio) skips them. Runs on CPU or GPU.

At start, before anything is served, the app checks the options, the checkpoint files, the device and the
host/port, and exits 2 with one `error:` line when one is wrong (the command-line policy of every entry
point, latentsync/command_line.py); Ctrl-C stops it with 130, SIGTERM with 143. A result where fewer than half
of the frames had a face (and were lip-synced) comes with a warning on the page and on stderr.
"""

from __future__ import annotations

import argparse
import contextvars
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


from latentsync.api import (  # noqa: E402
    DTYPES,
    PRESETS,
    SCHEDULERS,
    InputError,
    LipsyncOptions,
    build_pipeline,
    check_pipeline_inputs,
    face_coverage_warning,
    lipsync,
    prepare,
    preset_values,
)
from latentsync.command_line import OneLineParser, add_verbose_flag, quiet_console, run_cli, warn  # noqa: E402
from latentsync.errors import raise_if_stopped  # noqa: E402
from latentsync.faces.backends import BACKENDS  # noqa: E402
from latentsync.faces.detector import FACE_CHOICES  # noqa: E402
from latentsync.faces.settings import OCCLUSION_MODES, load_faces_config  # noqa: E402
from latentsync.pipelines.frame_schedule import LENGTH_MODES  # noqa: E402
from latentsync.pipelines.settings import inference_settings  # noqa: E402
from latentsync.utils.media import describe_streams, probe_video  # noqa: E402
from latentsync.utils.progress import STAGES  # noqa: E402
from latentsync.validation import check_face_options, check_occlusion  # noqa: E402

APP = inference_settings().app
# What a job may set from the page; the first four decide which models are loaded.
MODEL_OPTIONS = ("scheduler", "dtype", "enable_deepcache", "face_detector")
JOB_OPTIONS = (*MODEL_OPTIONS, "preset", "inference_steps", "guidance_scale", "guidance_fraction", "seed",
               "face_choice", "face_index", "face_position", "length_mode", "occlusion")


class ProgressDisplay:
    """The pipeline's stage reports as one overall fraction for `gr.Progress` (weights: app.progress_weights).

    Reports come from the pipeline's threads, where gradio's per-request context is missing: each update
    runs inside a copy of the request's context, taken when the job starts (RunProgress serializes calls)."""

    def __init__(self, progress, stages):
        self.progress = progress
        self.weights = {stage: getattr(APP.progress_weights, stage) for stage in stages}
        self.fraction = dict.fromkeys(stages, 0.0)
        self.context = contextvars.copy_context()

    def overall(self) -> float:
        return sum(w * self.fraction[s] for s, w in self.weights.items()) / sum(self.weights.values())

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.fraction[stage] = done / max(total, 1)
        self.context.run(self.progress, self.overall(), desc=f"{STAGES[stage]} {done}/{total}")


class LipsyncService:
    """Loads the models on first use (once per model setting) and runs one job at a time."""

    def __init__(self, options: LipsyncOptions, max_upload_mb: float | None = None,
                 max_video_seconds: float | None = None):
        self.options = options
        self.max_upload_mb = float(APP.max_upload_mb if max_upload_mb is None else max_upload_mb)
        self.max_video_seconds = float(APP.max_video_seconds if max_video_seconds is None else max_video_seconds)
        self._bundle = None
        self._bundle_key = None
        self._lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="latentsync-app-"))
        self.jobs = self.workdir / "jobs"
        self.jobs.mkdir()

    def limits_text(self) -> str:
        size = f"{self.max_upload_mb:g} MB" if self.max_upload_mb > 0 else "no size limit"
        length = f"{self.max_video_seconds:g} s" if self.max_video_seconds > 0 else "no length limit"
        return (f"Limits: uploads up to {size}, videos up to {length} "
                "(`--max_upload_mb`, `--max_video_seconds`; 0 = no limit).")

    def _pipeline(self, options: LipsyncOptions):
        key = tuple(getattr(options, k) for k in MODEL_OPTIONS)
        if self._bundle is None or key != self._bundle_key:
            self._bundle = None  # let the old models go before loading the new ones
            self._bundle = build_pipeline(options)
            self._bundle_key = key
        return self._bundle

    def job_options(self, **settings) -> LipsyncOptions:
        """The server's options with one job's settings; a preset given alone brings its values."""
        unknown = sorted(set(settings) - set(JOB_OPTIONS))
        if unknown:
            raise TypeError(f"unknown job setting(s) {unknown}; valid: {list(JOB_OPTIONS)}")
        given = {k: v for k, v in settings.items() if v is not None and v != ""}
        base = self.options
        if given.get("preset", base.preset) != base.preset:
            base = base.changed(**preset_values(given["preset"]))
        return base.changed(**given, progress=False, on_progress=None)

    def check_upload(self, path: str | None, what: str) -> Path:
        if not path:
            raise InputError(f"please upload a {what} file")
        p = Path(path)
        size_mb = p.stat().st_size / 1e6
        if 0 < self.max_upload_mb < size_mb:
            raise InputError(f"the {what} is {size_mb:.0f} MB; the limit is {self.max_upload_mb:g} MB")
        return p

    def run(self, video: str | None, audio: str | None, progress=None, on_warning=None, **settings) -> tuple[str, str]:
        """Lip-sync one upload pair: (output video, what was done: the run's summary and what its face choice said).
        `progress` (e.g. gr.Progress) gets (fraction, desc=...) as the run advances, `on_warning` (e.g.
        gr.Warning) a result's warning (few frames with a face), which also goes to stderr."""
        video_path = self.check_upload(video, "video")
        audio_path = self.check_upload(audio, "audio")
        opts = self.job_options(**settings)
        info = probe_video(video_path)
        if 0 < self.max_video_seconds < info.duration:
            raise InputError(f"the video lasts {info.duration:.0f} s; this app accepts up to "
                             f"{self.max_video_seconds:g} s (start it with --max_video_seconds 0 for no limit, "
                             "or use scripts/inference.py)")
        with self._lock:
            job_dir = Path(tempfile.mkdtemp(dir=self.jobs))
            out = job_dir / f"{video_path.stem}_lipsync.mp4"
            try:
                if progress is not None:
                    progress(0.0, desc="loading models")
                bundle = self._pipeline(opts)
                if progress is not None:
                    stages = ["faces", "denoising", "writing"]
                    if (opts.face_choice or load_faces_config().detector.choice) == "speaker":
                        stages.insert(0, "speaker")
                    opts = opts.changed(on_progress=ProgressDisplay(progress, stages))
                result = lipsync(str(video_path), str(audio_path), str(out), opts, pipeline=bundle)
                warning = face_coverage_warning(result)
                if warning:
                    warn(warning)
                    if on_warning is not None:
                        on_warning(warning)
            except BaseException:
                shutil.rmtree(job_dir, ignore_errors=True)
                raise
            # Keep only the latest result; gradio copies it to its own cache when serving it.
            for old in self.jobs.iterdir():
                if old != job_dir:
                    shutil.rmtree(old, ignore_errors=True)
            return str(out), run_summary(result, warning)

    def preview(self, video: str | None, **settings) -> tuple[str, str]:
        """The face pass alone over the first seconds, drawn (faces, mask, shots, occluders): (video, summary)."""
        from latentsync.faces.detector import FaceDetector
        from latentsync.pipelines.face_preview import preview_faces

        video_path = self.check_upload(video, "video")
        opts = self.job_options(**settings)
        face_choice, face_index, face_position = check_face_options(opts.face_choice, opts.face_index,
                                                                    opts.face_position)
        with self._lock:
            job_dir = Path(tempfile.mkdtemp(dir=self.jobs))
            detector = FaceDetector(backend=opts.face_detector)
            try:
                result = preview_faces(str(video_path), str(job_dir / f"{video_path.stem}_preview.mp4"),
                                       seconds=float(APP.preview_seconds), detector=detector, face_choice=face_choice,
                                       face_index=face_index, face_position=face_position,
                                       occlusion=check_occlusion(opts.occlusion))
            except BaseException:
                shutil.rmtree(job_dir, ignore_errors=True)
                raise
            finally:
                detector.close()
            return str(result.path), result.summary()

    def prepare(self, video: str | None, **settings) -> str:
        """Prepare an upload for later runs with other audio: its face pass and VAE moments go to the reuse cache."""
        video_path = self.check_upload(video, "video")
        opts = self.job_options(**settings)
        with self._lock:
            encoded, already = prepare(str(video_path), opts, pipeline=self._pipeline(opts))
        state = "was prepared already" if already and not encoded else f"is prepared ({encoded} frames encoded)"
        return f"{video_path.name} {state}: lip-syncing it with any audio now skips the face pass and the encoder."

    def example(self) -> tuple[str, str]:
        """A generated demo clip (video, audio) for the page's examples, made once."""
        from tools.make_demo_clip import make_demo_clip

        folder = self.workdir / "example"
        video, audio = folder / "demo_video.mp4", folder / "demo_audio.wav"
        if not video.exists():
            make_demo_clip(folder, seconds=float(APP.example_seconds))
        return str(video), str(audio)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_summary(result, warning: str | None = None) -> str:
    """What a run did, for the page: its summary line, what its face choice said (`speaker`: the candidates and the
    shot table, as the command line prints them) and its warning, one per line."""
    return "\n".join([result.summary(), *result.face_choice, *([f"warning: {warning}"] if warning else [])])


def _playable_in_browser(video_path: str) -> bool:
    """gradio's check whether a video needs converting, done with our ffmpeg (gradio's needs ffprobe, which the
    imageio-ffmpeg binary we install does not include)."""
    codec = describe_streams(video_path).video_codec
    return (Path(video_path).suffix.lower(), codec) in {(".mp4", "h264"), (".mp4", "av1"), (".webm", "vp9"),
                                                         (".webm", "vp8"), (".ogg", "theora")}


def _audio_playable_in_browser(audio_path: str) -> bool:
    """The same for audio (the example's WAV), with gradio's own table of playable pairs."""
    from gradio.processing_utils import PLAYABLE_AUDIO_CODECS

    return (Path(audio_path).suffix.lower(), describe_streams(audio_path).audio_codec) in PLAYABLE_AUDIO_CODECS


def build_app(service: LipsyncService, examples: bool = True):
    import gradio as gr
    from gradio import processing_utils

    if shutil.which("ffprobe") is None:
        processing_utils.video_is_playable = _playable_in_browser
        processing_utils.audio_is_playable = _audio_playable_in_browser
    opts = service.options

    def run(video, audio, preset, scheduler, steps, guidance, guided_fraction, seed, deepcache, dtype, face_detector,
            face_choice, face_index, face_position, length_mode, occlusion,
            progress=gr.Progress()):  # noqa: B008 (gradio's API)
        settings = dict(preset=preset, scheduler=scheduler, inference_steps=int(steps), guidance_scale=float(guidance),
                        guidance_fraction=float(guided_fraction), seed=int(seed), enable_deepcache=bool(deepcache),
                        dtype=dtype, face_detector=face_detector, face_choice=face_choice, length_mode=length_mode,
                        occlusion=occlusion,
                        face_index=face_index if face_choice == "index" else None,  # the fields of other choices
                        face_position=face_position if face_choice == "position" else None)  # are ignored
        try:
            return service.run(video, audio, progress=progress, on_warning=gr.Warning, **settings)
        except InputError as exc:  # every bad input (upload, option, no face, ...): one clear message
            raise gr.Error(" ".join(str(exc).split())) from exc
        except Exception as exc:
            logging.getLogger("latentsync.app").exception("lip-sync failed")
            raise gr.Error(f"internal error ({type(exc).__name__}): {exc}; the server log has the details") from exc

    def face_settings(face_detector, face_choice, face_index, face_position, occlusion) -> dict:
        return dict(face_detector=face_detector, face_choice=face_choice, occlusion=occlusion,
                    face_index=face_index if face_choice == "index" else None,
                    face_position=face_position if face_choice == "position" else None)

    def shown_errors(action, what: str):
        """`action` as a page handler: a bad input is one clear message, anything else an internal error."""
        def handler(video, *face):
            try:
                return action(video, **face_settings(*face))
            except InputError as exc:
                raise gr.Error(" ".join(str(exc).split())) from exc
            except Exception as exc:
                logging.getLogger("latentsync.app").exception("%s failed", what)
                raise gr.Error(f"internal error ({type(exc).__name__}): {exc}; the server log has the details") \
                    from exc
        return handler

    preview, prepare_video = shown_errors(service.preview, "preview"), shown_errors(service.prepare, "prepare")

    def preset_fields(name):
        """Choosing a preset fills the fields it sets; each can still be changed afterwards."""
        values = preset_values(name)
        return (values["scheduler"], values["inference_steps"], values["guidance_scale"], values["guidance_fraction"],
                values["enable_deepcache"], values["dtype"])

    with gr.Blocks(title="LatentSync") as demo:
        gr.Markdown("# LatentSync\nUpload a talking-face video and the audio its lips should follow.")
        gr.Markdown(service.limits_text(), elem_id="limits")
        with gr.Row():
            with gr.Column():
                video_in = gr.Video(label="Input video", elem_id="video_in")
                audio_in = gr.Audio(label="Input audio", type="filepath", elem_id="audio_in")
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    with gr.Row():
                        preset = gr.Dropdown(list(PRESETS), value=opts.preset, label="Preset", elem_id="preset")
                        scheduler = gr.Dropdown(list(SCHEDULERS), value=opts.scheduler, label="Sampler",
                                                elem_id="scheduler")
                        steps = gr.Slider(1, 50, value=opts.inference_steps, step=1, label="Inference steps",
                                          elem_id="steps")
                    with gr.Row():
                        guidance = gr.Slider(1.0, 3.0, value=opts.guidance_scale, step=0.1, label="Guidance scale",
                                             elem_id="guidance")
                        guided_fraction = gr.Slider(0.05, 1.0, value=opts.guidance_fraction, step=0.05,
                                                    label="Guidance on the first part of the steps (1 = all)",
                                                    elem_id="guidance_fraction")
                        seed = gr.Number(value=opts.seed, precision=0, label="Seed (-1 = random)", elem_id="seed")
                    with gr.Row():
                        deepcache = gr.Checkbox(value=opts.enable_deepcache, label="DeepCache", elem_id="deepcache")
                        dtype = gr.Dropdown(list(DTYPES), value=opts.dtype, label="Precision", elem_id="dtype")
                        face_detector = gr.Dropdown(list(BACKENDS), value=opts.face_detector, label="Face detector",
                                                    elem_id="face_detector")
                    with gr.Row():
                        face_choice = gr.Dropdown(list(FACE_CHOICES), label="Face to lip-sync", elem_id="face_choice",
                                                  value=opts.face_choice or load_faces_config().detector.choice)
                        face_index = gr.Number(value=opts.face_index or 0, precision=0, minimum=0,
                                               label="Face index (for index; 0 = leftmost)", elem_id="face_index")
                        face_position = gr.Textbox(value="", label="Face position X,Y (for position)",
                                                   elem_id="face_position")
                    occlusion = gr.Dropdown(list(OCCLUSION_MODES), elem_id="occlusion",
                                            value=opts.occlusion or load_faces_config().occlusion.mode,
                                            label="Keep what covers the mouth: auto (hands, microphones, ...), "
                                                  "hands, off (paint over, as the official)")
                    length_mode = gr.Dropdown(list(LENGTH_MODES), value=opts.length_mode, elem_id="length_mode",
                                              label="Length: pingpong / loop / cut_to_shortest when the audio is "
                                                    "longer; silence keeps a longer video whole")
                with gr.Row():
                    preview_button = gr.Button("Preview faces", elem_id="preview")
                    prepare_button = gr.Button("Prepare video", elem_id="prepare")
                    button = gr.Button("Lip-sync", variant="primary", elem_id="run")
                prepare_text = gr.Markdown(elem_id="prepare_text")
                if examples:
                    gr.Examples([list(service.example())], inputs=[video_in, audio_in],
                                label="Example: a generated talking-face clip with its speech")
            with gr.Column():
                video_out = gr.Video(label="Result", elem_id="video_out")
                run_text = gr.Markdown(elem_id="run_text")
                with gr.Accordion("Preview: which face is edited, where the mask lies, what passes through",
                                  open=False, elem_id="preview_panel"):
                    preview_out = gr.Video(label="Face pass over the first seconds", elem_id="preview_out")
                    preview_text = gr.Markdown(elem_id="preview_text")
        preset.change(preset_fields, preset, [scheduler, steps, guidance, guided_fraction, deepcache, dtype])
        button.click(run, [video_in, audio_in, preset, scheduler, steps, guidance, guided_fraction, seed, deepcache,
                           dtype, face_detector, face_choice, face_index, face_position, length_mode, occlusion],
                     [video_out, run_text],
                     concurrency_limit=1)
        face_inputs = [video_in, face_detector, face_choice, face_index, face_position, occlusion]
        preview_button.click(preview, face_inputs, [preview_out, preview_text], concurrency_limit=1)
        prepare_button.click(prepare_video, face_inputs, prepare_text, concurrency_limit=1)
    demo.queue(max_size=8, default_concurrency_limit=1)
    return demo


def check_server_address(host: str, port: int) -> None:
    """The port is a valid number and free on `host`, and the host resolves: refused before any model loads,
    instead of a traceback from the web server."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} is not an address of this machine ({exc.strerror}); use 127.0.0.1 or "
                         "0.0.0.0") from None
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port} is not a port number; use 1-65535 (default 7860)")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address[0], port, *address[2:]))
        except OSError as exc:
            raise InputError(f"cannot serve on {host}:{port}: {exc.strerror}; choose another --port (or stop what "
                             "uses it)") from None


def main(argv=None) -> int:
    d = LipsyncOptions()
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("unet_config_path", "inference_ckpt_path", "vae_path", "device", "dtype", "face_detector"):
        p.add_argument(f"--{name}", default=None if name == "dtype" else getattr(d, name))  # dtype: the preset's
    p.add_argument("--whisper_path", default=None)
    p.add_argument("--preset", default="quality", choices=PRESETS, help="initial preset: quality (official) or fast")
    p.add_argument("--inference_steps", type=int, default=None, help="initial value of the steps slider")
    p.add_argument("--max_upload_mb", type=float, default=APP.max_upload_mb, help="largest upload, MB (0 = no limit)")
    p.add_argument("--max_video_seconds", type=float, default=APP.max_video_seconds,
                   help="longest video, seconds (0 = no limit)")
    p.add_argument("--no_examples", action="store_true", help="do not generate and offer the demo clip")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public gradio.live link (needs internet)")
    add_verbose_flag(p)
    args = p.parse_args(argv)
    quiet_console(args.verbose, level=logging.INFO)
    return run_cli(lambda: serve(args), args.verbose)


def start_checks(args) -> LipsyncOptions:
    """Everything a user can get wrong, checked before serving: options, checkpoints, device, host and port."""
    options = LipsyncOptions.from_kwargs(**{k: v for k, v in vars(args).items()
                                            if k in LipsyncOptions.__dataclass_fields__ and v is not None})
    for value, flag in ((args.max_upload_mb, "--max_upload_mb"), (args.max_video_seconds, "--max_video_seconds")):
        if not 0 <= value < float("inf"):
            raise InputError(f"{flag} must be a number >= 0 (0 = no limit), got {value:g}")
    check_pipeline_inputs(options)
    check_server_address(args.host, args.port)
    return options


def serve(args) -> int:
    options = start_checks(args)
    service = LipsyncService(options, max_upload_mb=args.max_upload_mb, max_video_seconds=args.max_video_seconds)
    try:
        max_size = f"{args.max_upload_mb:g}mb" if args.max_upload_mb > 0 else None
        build_app(service, examples=not args.no_examples).launch(server_name=args.host, server_port=args.port,
                                                                 share=args.share, max_file_size=max_size)
    finally:
        service.close()
    raise_if_stopped()  # gradio handles the KeyboardInterrupt of Ctrl-C / SIGTERM itself and returns
    return 0


if __name__ == "__main__":
    sys.exit(main())
