"""Shot boundaries on the synthetic cut set: exact cuts, no cuts at flashes, pans or holds."""

from __future__ import annotations

from synth import boundary_f1

from toonlab.curate.stages.analyze.decode import VideoDecoder
from toonlab.curate.stages.analyze.shots import AnimationShotDetector, PySceneDetectAdaptive


def _detect(detector, path) -> list[int]:
    cuts, n = [], 0
    with VideoDecoder(path) as decoder:
        for batch in decoder.batches(7):
            cuts += detector.push(batch.start, batch.yuv)
            n = batch.start + len(batch)
    return sorted(cuts + detector.finish(n))


def _pooled(detector_factory, clips) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for clip in clips:
        cuts = _detect(detector_factory(), clip.path)
        precision, recall, _ = boundary_f1(cuts, clip.cuts, tolerance=0)
        hits = round(recall * len(clip.cuts))
        tp, fp, fn = tp + hits, fp + len(cuts) - hits, fn + len(clip.cuts) - hits
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_animation_detector_is_exact_on_cut_set(cut_set):
    for clip in cut_set:
        assert _detect(AnimationShotDetector(), clip.path) == list(clip.cuts), clip.path.name


def test_animation_detector_beats_pyscenedetect_on_cut_set(cut_set):
    ours = _pooled(AnimationShotDetector, cut_set)
    library = _pooled(PySceneDetectAdaptive, cut_set)
    assert ours[2] == 1.0
    assert ours[2] >= library[2]


def test_min_scene_len_suppresses_close_cuts(cut_set):
    clip = next(c for c in cut_set if any(e - s <= 20 for s, e in c.shot_ranges))
    cuts = _detect(AnimationShotDetector(min_scene_len=40), clip.path)
    assert all(b - a >= 40 for a, b in zip([0, *cuts], cuts, strict=False))
    assert len(cuts) < len(clip.cuts)
