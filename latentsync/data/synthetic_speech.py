"""Speech-like audio made of vowel syllables, plus the mouth shape each video frame should show for it.

The signal is a glottal-pulse-like harmonic series shaped by vowel formants and a syllable envelope. The
same envelope (times the vowel's openness) becomes the per-frame mouth opening, so a clip built from it is
in sync by construction, and a SyncNet can only separate in-sync from shifted pairs by relating the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Syllable:
    start: float  # seconds
    duration: float
    vowel: str
    amplitude: float
    pitch: float  # Hz
    fricative: float  # seconds of noise onset before the vowel (0 = none)


@dataclass(frozen=True)
class SpeechTrack:
    """Audio samples and the mouth shape per video frame (both before any audio/video offset)."""

    samples: np.ndarray  # float32 mono
    opening: np.ndarray  # (num_frames,) in [0, 1]
    width: np.ndarray  # (num_frames,) multiplier of the closed-mouth width
    syllables: tuple[Syllable, ...]


def plan_syllables(seconds: float, rng: np.random.Generator, cfg) -> list[Syllable]:
    """Random syllable timeline: vowel, loudness, pitch and an optional fricative onset for each."""
    vowels = sorted(cfg.vowels)
    base_pitch = rng.uniform(*cfg.pitch_hz)
    syllables = []
    t = rng.uniform(*cfg.lead_silence_s)
    while True:
        fricative = rng.uniform(*cfg.fricative_s) if rng.random() < cfg.fricative_prob else 0.0
        duration = rng.uniform(*cfg.syllable_s)
        if t + fricative + duration > seconds - cfg.release_s:
            break
        syllables.append(
            Syllable(
                start=t,
                duration=duration + fricative,
                vowel=vowels[rng.integers(len(vowels))],
                amplitude=rng.uniform(*cfg.amplitude),
                pitch=base_pitch * (1 + rng.uniform(-cfg.pitch_jitter, cfg.pitch_jitter)),
                fricative=fricative,
            )
        )
        pause = rng.uniform(*cfg.long_pause_s) if rng.random() < cfg.long_pause_prob else rng.uniform(*cfg.pause_s)
        t += duration + fricative + pause
    return syllables


def _envelope(n: int, sample_rate: int, attack: float, release: float) -> np.ndarray:
    """Trapezoid with raised-cosine ramps: loudness of one syllable's vowel over its samples."""
    env = np.ones(n)
    a = min(n // 2, int(attack * sample_rate))
    r = min(n // 2, int(release * sample_rate))
    if a:
        env[:a] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a))
    if r:
        env[n - r :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, r))
    return env


def _formant_gain(freqs: np.ndarray, formants, bandwidths) -> np.ndarray:
    """Spectral envelope of a vowel: a sum of resonance peaks at the formant frequencies."""
    gain = np.zeros_like(freqs)
    for index, (centre, width) in enumerate(zip(formants, bandwidths, strict=True)):
        gain += (0.7**index) / (1 + ((freqs - centre) / width) ** 2)
    return gain


def _voiced(syllable: Syllable, n: int, sample_rate: int, cfg) -> np.ndarray:
    """Harmonic series at a gently gliding pitch, each harmonic weighted by the vowel's formants."""
    t = np.arange(n) / sample_rate
    pitch = syllable.pitch * (1 + 0.06 * np.sin(np.pi * t / max(t[-1], 1e-3)))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    vowel = cfg.vowels[syllable.vowel]
    out = np.zeros(n)
    for k in range(1, int(cfg.max_harmonic_hz // syllable.pitch) + 1):
        gain = _formant_gain(k * pitch, vowel.formants, vowel.bandwidths) / k**0.3
        out += gain * np.sin(k * phase)
    return out / (np.abs(out).max() + 1e-9)


def _fricative(n: int, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise burst (a crude 's'/'f'/'t')."""
    noise = rng.standard_normal(n + 1)
    return np.diff(noise) * 0.35


def synthesize(seconds: float, fps: float, sample_rate: int, rng: np.random.Generator, cfg) -> SpeechTrack:
    """Audio of `seconds` and the per-frame mouth opening/width it implies (`cfg` = synthetic.speech)."""
    n = int(round(seconds * sample_rate))
    samples = rng.standard_normal(n) * cfg.breath_noise
    opening_curve = np.zeros(n)  # per-sample mouth opening, averaged into frames below
    width_curve = np.ones(n)
    syllables = plan_syllables(seconds, rng, cfg)
    for syl in syllables:
        i0 = int(syl.start * sample_rate)
        f1 = i0 + int(syl.fricative * sample_rate)
        i1 = min(n, i0 + int(syl.duration * sample_rate))
        if f1 > i0:
            burst = _fricative(f1 - i0, rng) * _envelope(f1 - i0, sample_rate, 0.005, 0.01)
            samples[i0:f1] += syl.amplitude * burst
            opening_curve[i0:f1] = np.maximum(opening_curve[i0:f1], cfg.fricative_opening)
        env = _envelope(i1 - f1, sample_rate, cfg.attack_s, cfg.release_s)
        vowel = cfg.vowels[syl.vowel]
        samples[f1:i1] += syl.amplitude * env * _voiced(syl, i1 - f1, sample_rate, cfg)
        opening_curve[f1:i1] = np.maximum(opening_curve[f1:i1], syl.amplitude * env * vowel.opening)
        width_curve[f1:i1] = 1 + (vowel.width - 1) * env
    samples = cfg.peak * samples / (np.abs(samples).max() + 1e-9)
    num_frames = int(round(seconds * fps))
    bounds = np.minimum(n, np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(int))
    opening = np.array([opening_curve[a:b].mean() if b > a else 0.0 for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    width = np.array([width_curve[a:b].mean() if b > a else 1.0 for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    return SpeechTrack(samples.astype(np.float32), np.clip(opening, 0, 1), width, tuple(syllables))


def shift_frames(values: np.ndarray, offset: int) -> np.ndarray:
    """Per-frame values delayed by `offset` frames (video lags audio when > 0), edges repeated."""
    index = np.clip(np.arange(len(values)) - offset, 0, len(values) - 1)
    return values[index]
