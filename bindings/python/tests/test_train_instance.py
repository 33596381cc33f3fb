"""examples/train_instance.py: the distortion follows the task's definition and a tiny end-to-end run prints the
JSON line with every requested strategy and its timing."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "examples", "train_instance.py")
spec = importlib.util.spec_from_file_location("train_instance", SCRIPT)
ti = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ti)


def write_fvecs(path, x):
    rows = np.empty((len(x), x.shape[1] + 1), dtype=np.int32)
    rows[:, 0] = x.shape[1]
    rows[:, 1:] = x.astype(np.float32).view(np.int32)
    rows.tofile(path)


def test_distortion_erases_a_patch_shifts_and_scales():
    rng = np.random.default_rng(7)
    images = np.ones((200, 784), dtype=np.float32)
    out = ti.distort(images, rng).reshape(200, 28, 28)
    assert out.shape == (200, 28, 28) and out.dtype == np.float32
    # Noise sigma 0.1 around intensity x [0.7, 1.3] on the kept pixels.
    centre = out[:, 2:26, 2:26]
    assert 0.6 < float(np.median(centre)) < 1.4
    # Every image has an 8x8 patch (noise only, mean ~0) somewhere: at least 64 pixels below 0.4.
    assert np.all((out < 0.4).reshape(200, -1).sum(axis=1) >= 64)
    # Deterministic for a seed, different across seeds.
    a = ti.distort(images[:5], np.random.default_rng(1))
    b = ti.distort(images[:5], np.random.default_rng(1))
    c = ti.distort(images[:5], np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_embedding_batch_is_chosen_per_encoder_and_does_not_change_the_vectors(kind):
    torch.manual_seed(0)
    model = ti.Encoder(kind)
    x = np.random.default_rng(6).random((2500, 784), dtype=np.float32)
    default = ti.embed(model, x)  # the encoder's own batch (1 024 rows for the CNN: 3 batches here)
    assert ti.EMBED_BATCH[kind] in (1024, 4096)
    np.testing.assert_allclose(default, ti.embed(model, x, batch=97), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(default, axis=1), 1.0, rtol=1e-5)
    assert model.training  # embed() restores training mode


def test_tiny_run_prints_every_strategy(tmp_path):
    rng = np.random.default_rng(3)
    write_fvecs(tmp_path / "base.fvecs", rng.integers(0, 256, (600, 784)).astype(np.float32))
    write_fvecs(tmp_path / "query.fvecs", rng.integers(0, 256, (300, 784)).astype(np.float32))
    strategies = ["in_batch", "in_batch_random", "in_batch_mined", "in_batch_curriculum", "in_batch_refresher",
                  "in_batch_clustered", "in_batch_random_bank_mined", "in_batch_random_bank_random"]
    env = dict(os.environ)
    if not os.environ.get("MINEDEX_TEST_INSTALLED"):  # CI: the script imports the installed wheel
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, ".."), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--epochs", "2", "--seeds", "1",
                          "--batch", "64", "--ann", "IVF8,Flat", "--ann-probes", "4", "--group", "8", "--bank-negatives", "4",
                          "--strategies", ",".join(strategies)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for s in strategies:
        assert 0.0 <= result[s] <= 1.0
        assert result["timing"][s]["total_s"] >= result["timing"][s]["mining_s"] >= 0.0
    assert result["seeds"] == [1] and result["epochs"] == 2


def test_rejects_eval_seed_among_training_seeds(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--seeds", "5", "--eval-seed", "5"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "eval-seed" in run.stderr


@pytest.mark.parametrize("mode,flag", [(["--overlap"], "--overlap"), (["--online", "--online-async", "--overlap"], "--overlap"),
                                       (["--online", "--background-embed"], "--background-embed"),
                                       (["--refresh-nowait"], "--refresh-nowait"), (["--refresh-every", "-1"], "--refresh-every"),
                                       (["--online", "--handout-gamma", "1"], "--handout-gamma"),
                                       (["--sampling", "softmax", "--handout-gamma", "1"], "--handout-gamma"),
                                       (["--online", "--sampling", "softmax", "--handout-gamma", "-1"], "--handout-gamma"),
                                       (["--tau", "0"], "--tau")])
def test_refresher_flags_that_need_another_flag_are_refused(tmp_path, mode, flag):
    run = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--strategies", "in_batch_refresher", *mode],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and flag in run.stderr, run.stderr


@pytest.mark.parametrize("mode", [["--online"], ["--online", "--online-async"], ["--fresh-queries"], ["--warmup", "0"],
                                  ["--online", "--online-async", "--sampling", "simans", "--simans-a", "20", "--range-max", "40"],
                                  ["--online", "--sampling", "softmax", "--max-hand-outs", "1"],
                                  ["--warmup", "0", "--sampling", "random"], ["--warmup", "0", "--retrain-every", "0"],
                                  ["--online", "--online-async", "--mine-ahead", "3"], ["--online", "--overlap", "--warmup", "0"],
                                  ["--online", "--online-async", "--warmup", "0", "--refresh-every", "2", "--retrain-every", "0"],
                                  ["--online", "--online-async", "--background-embed", "--warmup", "0"],
                                  ["--online", "--online-async", "--background-embed", "--mine-ahead", "2", "--refresh-nowait"],
                                  ["--online", "--online-async", "--sampling", "softmax", "--handout-gamma", "1",
                                   "--verbose-handouts", "--tau", "0.05"]])
def test_tiny_refresher_variants(tmp_path, mode):
    rng = np.random.default_rng(4)
    write_fvecs(tmp_path / "base.fvecs", rng.integers(0, 256, (400, 784)).astype(np.float32))
    write_fvecs(tmp_path / "query.fvecs", rng.integers(0, 256, (200, 784)).astype(np.float32))
    env = dict(os.environ)
    if not os.environ.get("MINEDEX_TEST_INSTALLED"):
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, ".."), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--epochs", "3", "--seeds", "1",
                          "--batch", "64", "--ann", "IVF8,Flat", "--ann-probes", "4", "--strategies",
                          "in_batch_refresher", *mode], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert 0.0 <= result["in_batch_refresher"] <= 1.0
    timing = result["timing"]["in_batch_refresher"]
    assert timing["total_s"] >= timing["mining_s"] >= 0.0
    if "--online" not in mode:  # an epoch-level mining pass per epoch after the warm-up, on a fresh snapshot
        assert "snapshot 2" in run.stderr, run.stderr
    if "--verbose-handouts" in mode:  # one line per epoch (the warm-up epoch's random negatives too)
        assert run.stderr.count("hand-outs to") == 3, run.stderr


def test_validation_mode_holds_out_training_images_and_never_reads_the_test_set(tmp_path):
    rng = np.random.default_rng(5)
    write_fvecs(tmp_path / "base.fvecs", rng.integers(0, 256, (500, 784)).astype(np.float32))
    write_fvecs(tmp_path / "query.fvecs", np.full((10, 784), np.nan, dtype=np.float32))  # unread in this mode
    env = dict(os.environ)
    if not os.environ.get("MINEDEX_TEST_INSTALLED"):
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, ".."), env.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--epochs", "1", "--seeds", "1",
                          "--batch", "64", "--validation", "100", "--strategies", "in_batch_random,in_batch_mined",
                          "--sampling", "softmax", "--temperature", "0.1"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["evaluated_on"] == "validation" and result["eval_images"] == 100
    assert result["train_images"] == 400 and result["eval_seed"] == 20261 and result["sampling"] == "softmax"
    for s in ("in_batch_random", "in_batch_mined"):
        assert 0.0 <= result[s] <= 1.0
    bad = subprocess.run([sys.executable, SCRIPT, "--data", str(tmp_path), "--seeds", "1", "--validation", "500"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "--validation" in bad.stderr
