"""The Gradio app: the service's limits and clean-up, and the real UI in a headless browser."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from latentsync.api import InputError, LipsyncOptions, preset_values
from tests.helpers import REPO_ROOT
from tests.inference_fixtures import (
    decode_all,
    face_clip,
    region_change,
    tiny_options,
    two_face_clip,
    voice_over_clip,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return face_clip(tmp_path_factory.mktemp("app_clip"), "clip", 0.8)


def test_service_runs_one_job_and_cleans_up(ckpts, clip):
    import gradio_app

    options = LipsyncOptions(**{k: v for k, v in tiny_options(ckpts).items()})
    service = gradio_app.LipsyncService(options)
    try:
        first, said = service.run(str(clip[0]), str(clip[1]), inference_steps=2, seed=1, length_mode="pingpong")
        assert Path(first).exists()
        assert said.splitlines()[0].startswith(f"{first}: 20 frames at 25 fps, face in 20"), said
        second, said = service.run(str(clip[0]), str(clip[1]), inference_steps=2, guidance_scale=1.0, seed=2,
                                   length_mode="loop", face_choice="speaker")
        assert Path(second).exists() and not Path(first).exists(), "older results are removed"
        assert [line for line in said.splitlines()[1:] if line.startswith("shot 1/1: frames 0-19")], said
        with pytest.raises(InputError, match="upload a video"):
            service.run(None, str(clip[1]), inference_steps=2)
    finally:
        service.close()
    assert not service.workdir.exists()


def test_preview_shows_the_face_pass_without_loading_models(ckpts, clip):
    import gradio_app
    from latentsync.utils.media import VideoReader

    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)))
    try:
        path, summary = service.preview(str(clip[0]), face_choice="largest")
        assert service._bundle is None  # no network was loaded for a preview
        with VideoReader(path) as reader, VideoReader(clip[0], target_fps=25) as source:
            assert len(reader) == len(source) == 20  # the whole 0.8 s clip (shorter than preview_seconds)
            drawn = reader.get_frames(range(3)).astype(int) - source.get_frames(range(3)).astype(int)
        assert (abs(drawn).max(-1) > 60).sum() > 300  # the overlay is drawn on the frames
        assert "20 frames, a face to edit in 20" in summary
        with pytest.raises(InputError, match="upload a video"):
            service.preview(None)
    finally:
        service.close()


def test_preview_of_a_voice_over_shows_every_frame_passing_through_and_why_a_run_stops(ckpts, tmp_path):
    """`speaker` on a voice nobody on screen speaks: a run stops (test_speaker.py); the preview still shows the
    video, every frame passed through with no face drawn on, and says why a run would stop and what to choose."""
    import gradio_app
    from latentsync.utils.media import VideoReader

    video, _, boxes = two_face_clip(tmp_path, "two", speaking=0)
    dubbed = voice_over_clip(video, tmp_path)
    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)))
    try:
        path, summary = service.preview(str(dubbed), face_choice="speaker")
        with VideoReader(path) as reader:
            assert len(reader) == 100  # the whole 4 s clip (shorter than preview_seconds)
        shown, source = decode_all(path), decode_all(dubbed)
    finally:
        service.close()
    assert "100 frames, a face to edit in 0, 100 would pass through unchanged" in summary
    assert "shot 1/1" in summary and "nobody speaks" in summary  # the speaker pass's shot table
    assert "would stop" in summary and "--face_choice tracked" in summary and "largest" in summary
    # No box, points or mouth outline on either face (an edited face changes by ~7 grey levels: its box is drawn);
    # the "passed through" label at the bottom of every frame.
    assert max(region_change(source, shown, box) for box in boxes) < 4.5
    assert region_change(source, shown, (0, source.shape[1] - 30, source.shape[2], source.shape[1])) > 8


def test_upload_size_and_length_limits(ckpts, clip):
    import gradio_app

    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)), max_upload_mb=0.001)
    try:
        with pytest.raises(InputError, match="limit is 0.001 MB"):
            service.run(str(clip[0]), str(clip[1]))
    finally:
        service.close()
    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)), max_video_seconds=0.5)
    try:
        with pytest.raises(InputError, match="up to 0.5 s"):
            service.run(str(clip[0]), str(clip[1]))
        assert "videos up to 0.5 s" in service.limits_text()
    finally:
        service.close()
    unlimited = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)), max_upload_mb=0, max_video_seconds=0)
    assert "no size limit" in unlimited.limits_text() and "no length limit" in unlimited.limits_text()
    unlimited.close()


def test_page_options_reach_the_pipeline_and_progress_is_reported(ckpts, clip, tmp_path, monkeypatch):
    import gradio_app
    from latentsync.utils.media import probe_video

    seen = []
    real = gradio_app.lipsync

    def recording(*args, **kwargs):
        seen.append(vars(args[3]))  # the job's LipsyncOptions record
        return real(*args, **kwargs)

    monkeypatch.setattr(gradio_app, "lipsync", recording)
    long_audio = face_clip(tmp_path, "long", 0.8, audio_seconds=1.6)[1]
    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts)))
    calls = []
    try:
        out, _ = service.run(str(clip[0]), str(long_audio), progress=lambda f, desc: calls.append((f, desc)),
                          length_mode="cut_to_shortest", face_choice="index", face_index=0, seed=5,
                          guidance_scale=1.0, guidance_fraction=0.5, enable_deepcache=False)
        frames_out = probe_video(out).num_frames  # before the next job removes it
        first_bundle = service._bundle
        service.run(str(clip[0]), str(long_audio), length_mode="loop", enable_deepcache=False)
        assert service._bundle is first_bundle  # same model settings: models kept
        service.run(str(clip[0]), str(long_audio), length_mode="loop", scheduler="dpmsolver++")
        assert service._bundle is not first_bundle  # another sampler: reloaded
    finally:
        service.close()
    options = seen[0]
    assert (options["length_mode"], options["face_choice"], options["face_index"], options["seed"],
            options["guidance_scale"], options["guidance_fraction"], options["enable_deepcache"]) == (
        "cut_to_shortest", "index", 0, 5, 1.0, 0.5, False)
    assert seen[2]["scheduler"] == "dpmsolver++"
    assert frames_out == 20  # cut to the 0.8 s video, not the 1.6 s audio
    fractions = [f for f, _ in calls]
    descriptions = " ".join(d for _, d in calls)
    assert calls[0] == (0.0, "loading models") and fractions[-1] == pytest.approx(1.0)
    assert fractions == sorted(fractions), "progress never goes back"
    for stage in ("detecting faces", "denoising", "writing"):
        assert stage in descriptions
    assert "denoising 1/4" in descriptions and "denoising 4/4" in descriptions  # 2 chunks x 2 steps, each reported


def test_a_preset_fills_the_sampler_fields_and_the_page_sends_them():
    """The page's wiring, read from the built app (no browser): the guidance-fraction field included."""
    import gradio_app

    service = gradio_app.LipsyncService(LipsyncOptions.from_kwargs(preset="fast"))
    try:
        demo = gradio_app.build_app(service, examples=False)
    finally:
        service.close()
    field = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "guidance_fraction")
    assert field.value == 0.5  # the fast preset's value, shown at start
    events = {f.name: f for f in (demo.fns.values() if isinstance(demo.fns, dict) else demo.fns)}
    fill = events["preset_fields"]
    option_of = {"scheduler": "scheduler", "steps": "inference_steps", "guidance": "guidance_scale",
                 "guidance_fraction": "guidance_fraction", "deepcache": "enable_deepcache", "dtype": "dtype"}
    for name in ("quality", "fast"):
        filled = dict(zip([o.elem_id for o in fill.outputs], fill.fn(name), strict=True))
        assert filled == {field_id: preset_values(name)[key] for field_id, key in option_of.items()}
    assert "guidance_fraction" in [i.elem_id for i in events["run"].inputs]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_app(browser, url, sync_api):
    """A new tab with the app rendered: 'networkidle' can come while the page still says 'Loading...' on a busy
    machine, because Gradio builds the page from its config after the scripts have arrived."""
    page = browser.new_page()
    page.goto(url, wait_until="networkidle")
    try:
        page.wait_for_selector("#run", timeout=120_000)
    except sync_api.TimeoutError:
        pytest.fail("the app page did not render within 120 s; page text:\n" + page.inner_text("body")[-2000:])
    return page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium browser installed (apt-get install chromium)")
def test_app_in_headless_browser(ckpts, clip, tmp_path):
    """Upload, one Advanced option (length cut_to_shortest with a longer audio), the real progress, playback."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    long_audio = face_clip(tmp_path, "long", 0.8, audio_seconds=1.6)[1]
    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, str(REPO_ROOT / "gradio_app.py"), "--unet_config_path", "configs/unet/tiny.yaml",
           "--inference_ckpt_path", str(ckpts["unet"]), "--vae_path", str(ckpts["vae"]),
           "--whisper_path", str(ckpts["whisper"]), "--device", "cpu", "--port", str(port),
           "--inference_steps", "2"]
    log = open(tmp_path / "app.log", "w")
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "app.log").read_text()
                time.sleep(1)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = _open_app(browser, url, sync_api)
            body = page.inner_text("body")
            assert "Limits: uploads up to 200 MB, videos up to 120 s" in body and "Example" in body
            page.locator("#video_in input[type=file]").set_input_files(str(clip[0]))
            page.locator("#audio_in input[type=file]").set_input_files(str(long_audio))
            page.get_by_text("Advanced").click()  # open the section, choose one of its options
            assert page.locator("#steps input[type=number]").input_value() == "2"
            page.locator("#length_mode input").click()
            page.get_by_role("option", name="cut_to_shortest").click()
            assert page.locator("#length_mode input").input_value() == "cut_to_shortest"
            page.evaluate("""() => {  // every progress message the page shows, as it shows it
                window.seenProgress = [];
                new MutationObserver(() => {
                    const text = document.querySelector('#video_out')?.innerText || '';
                    if (/detecting faces|denoising|writing/.test(text)) window.seenProgress.push(text);
                }).observe(document.body, {subtree: true, childList: true, characterData: true});
            }""")
            page.locator("#run").click()
            try:
                page.wait_for_selector("#video_out video", timeout=480_000)  # generous: CI machines are slow
            except sync_api.TimeoutError:
                page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
                pytest.fail("no result video appeared; app log:\n" + (tmp_path / "app.log").read_text()[-4000:]
                            + "\npage text:\n" + page.inner_text("body")[-2000:])
            duration = page.evaluate("""async () => {
                const v = document.querySelector('#video_out video');
                if (v.readyState < 1) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
                await v.play().catch(() => {});
                await new Promise(r => setTimeout(r, 300));
                return [v.duration, v.currentTime];
            }""")
            progress = page.evaluate("window.seenProgress")
            said = page.inner_text("#run_text")  # what was done, under the result
            # a bad upload: one clear message in the page, no traceback
            bad = tmp_path / "not_a_video.mp4"
            bad.write_text("this is not a video " * 100)
            page = _open_app(browser, url, sync_api)
            page.locator("#video_in input[type=file]").set_input_files(str(bad))
            page.locator("#audio_in input[type=file]").set_input_files(str(clip[1]))
            page.locator("#run").click()
            try:
                # the server's message; not any "Error": the browser's own "Video not playable" toast for the
                # bad upload also says "Error", and can come first
                page.wait_for_selector("text=/cannot read video|not a video/i", timeout=120_000)
            except sync_api.TimeoutError:
                pytest.fail("no error message for a bad upload; page text:\n" + page.inner_text("body")[-2000:])
            shown = page.inner_text("body")
            browser.close()
        assert "Traceback" not in shown
        assert "cannot read video" in shown or "not a video" in shown.lower(), shown[-1500:]
        assert abs(duration[0] - 0.8) < 0.1, duration  # cut_to_shortest: the 0.8 s video, not the 1.6 s audio
        assert "20 frames at 25 fps, face in 20" in said, said
        assert duration[1] > 0, "the result video did not play"
        assert any(re.search(r"(detecting faces|denoising|writing) \d+/\d+", t) for t in progress), progress[:5]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_prepare_video_fills_the_reuse_cache_for_later_jobs(ckpts, clip, tmp_path):
    import gradio_app

    service = gradio_app.LipsyncService(LipsyncOptions(**tiny_options(ckpts, cache=True,
                                                                      cache_dir=str(tmp_path / "cache"))))
    try:
        assert "is prepared (" in service.prepare(str(clip[0]))
        assert "was prepared already" in service.prepare(str(clip[0]))
        with pytest.raises(InputError, match="upload a video"):
            service.prepare(None)
    finally:
        service.close()
