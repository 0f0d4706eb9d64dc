"""Checkpoints: bit-identical resumes, corruption detected and named, fallback, rotation, NaN guard, old format."""

import errno
import hashlib
import json
import os

import pytest
import torch
from helpers import make_file_creation_fail
from safetensors.torch import save_file
from torch import nn

from latentquant import checkpoint as ckpt
from latentquant.checkpoint import (
    CheckpointError,
    intact_checkpoints,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from latentquant.errors import UserError

BATCHES = torch.randn(8, 16, 4, generator=torch.Generator().manual_seed(1))


def make(seed=0, hidden=8, groups=1):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 2))
    params = list(model.parameters())
    if groups == 2:
        params = [{"params": params[:2]}, {"params": params[2:], "lr": 1e-3}]
    return model, torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)


def train(model, opt, steps, start=0):
    model.train()
    for i in range(start, start + steps):
        loss = model(BATCHES[i]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def trained(steps=3, **kwargs):
    model, opt = make(**kwargs)
    train(model, opt, steps)
    return model, opt


def save(directory, step, model, opt, keep=10):
    return save_checkpoint(directory, step, model, {"main": opt}, {"stream": {"epoch": 0, "position": step}},
                           keep=keep)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_same_optimizer(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for pid in sa["state"]:
        for key, value in sa["state"][pid].items():
            other = sb["state"][pid][key]
            assert torch.equal(value, other) and value.dtype == other.dtype, (pid, key)


@pytest.fixture
def d(tmp_path):
    return tmp_path / "checkpoints"


def test_round_trip_is_bit_identical_and_resumes_identically(d):
    model, opt = trained(3)
    marker = save(d, 3, model, opt)
    fresh, fresh_opt = make(seed=7)
    meta = load_checkpoint(d, fresh, {"main": fresh_opt})
    assert meta["step"] == 3 and meta["stream"] == {"epoch": 0, "position": 3} and marker == d / "step_3.json"
    assert same(snapshot(model), snapshot(fresh))
    assert_same_optimizer(opt, fresh_opt)
    train(model, opt, 2, start=3)
    train(fresh, fresh_opt, 2, start=3)
    assert same(snapshot(model), snapshot(fresh))
    assert_same_optimizer(opt, fresh_opt)


def test_two_named_optimizers_round_trip(d):
    model, _ = make()
    enc = torch.optim.AdamW(model[0].parameters(), lr=1e-2)
    gen = torch.optim.AdamW(model[3].parameters(), lr=1e-3)
    for i in range(2):
        loss = model(BATCHES[i]).pow(2).mean()
        enc.zero_grad()
        gen.zero_grad()
        loss.backward()
        enc.step()
        gen.step()
    save_checkpoint(d, 2, model, {"encoder": enc, "generator": gen}, {})
    fresh, _ = make(seed=3)
    fenc = torch.optim.AdamW(fresh[0].parameters(), lr=1e-2)
    fgen = torch.optim.AdamW(fresh[3].parameters(), lr=1e-3)
    load_checkpoint(d, fresh, {"encoder": fenc, "generator": fgen})
    assert_same_optimizer(enc, fenc)
    assert_same_optimizer(gen, fgen)
    with pytest.raises(CheckpointError, match="no state for optimizer_critic"):
        load_checkpoint(d, fresh, {"critic": fenc})


def test_marker_records_format_size_and_digest(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    meta = json.loads((d / "step_2.json").read_text())
    data = (d / "step_2.safetensors").read_bytes()
    assert meta["format"] == 2
    assert meta["file"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert "optimizer_main" in meta and "optimizer" not in meta
    from safetensors.torch import load
    names = load(data).keys()
    assert any(k.startswith("optimizer_main.") for k in names) and any(k.startswith("model.") for k in names)


def test_a_bare_optimizer_is_refused(d):
    model, opt = trained(1)
    with pytest.raises(TypeError, match="dict name -> optimizer"):
        save_checkpoint(d, 1, model, opt, {})
    assert not d.exists()


def truncate_weights(d):
    p = d / "step_3.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def flip(offset):
    def corrupt(d):
        p = d / "step_3.safetensors"
        data = bytearray(p.read_bytes())
        data[offset] ^= 0x01
        p.write_bytes(bytes(data))
    return corrupt


def truncate_marker(d):
    p = d / "step_3.json"
    p.write_text(p.read_text()[: len(p.read_text()) // 2])


def empty_marker(d):
    (d / "step_3.json").write_text("")


@pytest.mark.parametrize(("corrupt", "expected"), [
    (truncate_weights, r"step_3\.safetensors: \d+ bytes, the marker records"),
    (flip(12), r"step_3\.safetensors: its SHA-256 differs"),  # inside the JSON header
    (flip(-1), r"step_3\.safetensors: its SHA-256 differs"),  # the last tensor's data
    (truncate_marker, r"step_3\.json: the marker is not valid JSON"),
    (empty_marker, r"step_3\.json: the marker is not valid JSON"),
], ids=["truncated-safetensors", "header-flipped", "data-flipped", "truncated-json", "empty-json"])
def test_corruption_is_detected_and_named(d, corrupt, expected):
    model, opt = trained(3)
    save(d, 3, model, opt)
    assert verify_checkpoint(d, 3) is None
    corrupt(d)
    fresh, fresh_opt = make(seed=5)
    before, before_opt = snapshot(fresh), fresh_opt.state_dict()
    with pytest.raises(CheckpointError, match=expected) as info:
        load_checkpoint(d, fresh, {"main": fresh_opt})
    assert "\n" not in str(info.value) and str(d / "step_3") in str(info.value)
    assert same(before, snapshot(fresh)) and fresh_opt.state_dict() == before_opt
    assert verify_checkpoint(d, 3) == str(info.value)
    assert intact_checkpoints(d) == []
    assert list_checkpoints(d) == [3]  # still listed: it exists, it is just not intact


def test_wrong_architecture_is_mismatched_and_leaves_the_model_alone(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    wider, wider_opt = make(hidden=16)
    before = snapshot(wider)
    with pytest.raises(CheckpointError, match=r"mismatched checkpoint .*step_2\.safetensors: 0\.weight has shape "
                                              r"\(8, 4\), the model's is \(16, 4\)"):
        load_checkpoint(d, wider, {"main": wider_opt})
    assert same(before, snapshot(wider))
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"mismatched.*missing keys 2\.weight, 2\.bias; unexpected keys "
                                              r"1\.bias, 1\.num_batches_tracked"):
        load_checkpoint(d, other)


def test_optimizer_mismatch_leaves_model_and_optimizer_untouched(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    fresh, two_groups = make(seed=4, groups=2)
    before, before_opt = snapshot(fresh), two_groups.state_dict()
    with pytest.raises(CheckpointError, match="mismatched.*1 parameter groups, the optimizer 2"):
        load_checkpoint(d, fresh, {"main": two_groups})
    assert same(before, snapshot(fresh)) and two_groups.state_dict() == before_opt


def test_optimizer_state_of_another_shape_is_mismatched(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    fresh, fresh_opt = make(seed=4)
    # Same parameter count, other order: the moments would land on parameters of another shape.
    reordered = torch.optim.AdamW(list(fresh.parameters())[::-1], lr=1e-2)
    with pytest.raises(CheckpointError, match="exp_avg of parameter 0 has shape"):
        load_checkpoint(d, fresh, {"main": reordered})


def test_fallback_to_the_older_intact_checkpoint_warns_naming_the_bad_one(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    at_two = snapshot(model)
    train(model, opt, 2, start=2)
    save(d, 4, model, opt)
    p = d / "step_4.safetensors"
    p.write_bytes(p.read_bytes()[:-7])
    fresh, fresh_opt = make(seed=9)
    warnings_seen = []
    meta = load_checkpoint(d, fresh, {"main": fresh_opt}, fallback=True, warn=warnings_seen.append)
    assert meta["step"] == 2 and same(at_two, snapshot(fresh))
    assert len(warnings_seen) == 1
    assert str(p) in warnings_seen[0] and "falling back" in warnings_seen[0]
    with pytest.warns(UserWarning, match=r"step_4\.safetensors.*falling back"):
        load_checkpoint(d, make()[0], fallback=True)


def test_without_fallback_or_with_an_explicit_step_a_bad_checkpoint_raises(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    save(d, 4, model, opt)
    empty_marker_4 = d / "step_4.json"
    empty_marker_4.write_text("")
    with pytest.raises(CheckpointError, match=r"step_4\.json"):
        load_checkpoint(d, make()[0])
    with pytest.raises(CheckpointError, match=r"step_4\.json"):
        load_checkpoint(d, make()[0], step=4, fallback=True)
    assert load_checkpoint(d, make()[0], step=2)["step"] == 2
    with pytest.raises(CheckpointError, match=r"no checkpoint for step 3 in .*available: \[2, 4\]"):
        load_checkpoint(d, make()[0], step=3)


def test_no_intact_checkpoint_lists_them_all(d):
    model, opt = trained(2)
    save(d, 2, model, opt)
    save(d, 4, model, opt)
    for s in (2, 4):
        (d / f"step_{s}.json").write_text("{")
    seen = []
    with pytest.raises(CheckpointError, match=r"no intact checkpoint in .*step_4\.json.*step_2\.json"):
        load_checkpoint(d, make()[0], fallback=True, warn=seen.append)
    assert len(seen) == 1 and "step_4.json" in seen[0]


def test_no_checkpoint_at_all(d):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_checkpoint(d, make()[0], fallback=True)


def test_rotation_keeps_the_newest(d):
    model, opt = trained(1)
    for s in (2, 4, 6):
        save(d, s, model, opt, keep=2)
    assert list_checkpoints(d) == [4, 6]
    assert sorted(p.name for p in d.iterdir()) == ["step_4.json", "step_4.safetensors", "step_6.json",
                                                   "step_6.safetensors"]


def test_rotation_counts_only_intact_checkpoints(d):
    model, opt = trained(1)
    save(d, 2, model, opt, keep=2)
    save(d, 4, model, opt, keep=2)
    p = d / "step_4.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    save(d, 6, model, opt, keep=2)
    assert intact_checkpoints(d) == [2, 6]  # the good step 2 survives the bad step 4
    assert list_checkpoints(d) == [2, 6]  # and the bad one, older than the new one, is gone


def test_rotation_never_removes_the_new_one_nor_later_steps_and_clears_leftovers(d):
    model, opt = trained(1)
    for s in (2, 4, 6):
        save(d, s, model, opt)
    (d / "step_1.safetensors").write_bytes(b"orphan without marker")
    (d / ".step_3.safetensors.0123abcd.tmp").write_bytes(b"interrupted write")
    (d / ".step_2.json.tmp").write_text("old-style temp")
    save(d, 3, model, opt, keep=1)
    assert list_checkpoints(d) == [3, 4, 6]
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".") or "_1." in p.name) == []


def test_nan_or_inf_weights_are_refused_and_nothing_is_written(d):
    model, opt = trained(1)
    save(d, 1, model, opt)
    before = sorted(p.name for p in d.iterdir())
    for bad in (float("nan"), float("inf")):
        with torch.no_grad():
            model[0].weight[0, 0] = bad
        with pytest.raises(CheckpointError, match=r"refusing to save checkpoint step 2 .*'0\.weight' is not finite"):
            save(d, 2, model, opt)
        assert sorted(p.name for p in d.iterdir()) == before
    assert not (d.parent / "never").exists()
    with pytest.raises(CheckpointError):
        save(d.parent / "never", 1, model, opt)
    assert not (d.parent / "never").exists()


def write_old_format(d, step, model, opt, extra):
    """A checkpoint as written before format 2: one optimizer under the plain prefix, no digest."""
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    state = opt.state_dict()
    scalars = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                tensors[f"optimizer.{pid}.{key}"] = value.contiguous()
            else:
                scalars[f"{pid}.{key}"] = value.item() if isinstance(value, torch.Tensor) else value
    groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    save_file(tensors, str(d / f"step_{step}.safetensors"))
    meta = {"step": step, "optimizer": {"state": scalars, "param_groups": groups}, **extra}
    (d / f"step_{step}.json").write_text(json.dumps(meta))


def test_old_format_checkpoint_still_loads_bit_identically(d):
    model, opt = trained(3)
    write_old_format(d, 3, model, opt, {"torch_rng": [1, 2]})
    assert verify_checkpoint(d, 3) is None
    fresh, fresh_opt = make(seed=6)
    meta = load_checkpoint(d, fresh, {"adamw": fresh_opt})
    assert meta["step"] == 3 and meta["torch_rng"] == [1, 2]
    assert same(snapshot(model), snapshot(fresh))
    assert_same_optimizer(opt, fresh_opt)
    train(model, opt, 1, start=3)
    train(fresh, fresh_opt, 1, start=3)
    assert same(snapshot(model), snapshot(fresh))
    # two optimizers cannot share the one unnamed state
    with pytest.raises(CheckpointError, match="no state for optimizer_a"):
        load_checkpoint(d, make()[0], {"a": make()[1], "b": make()[1]})


def test_old_format_checkpoint_still_gets_structural_checks(d):
    model, opt = trained(2)
    write_old_format(d, 2, model, opt, {})
    p = d / "step_2.safetensors"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"step_2\.safetensors: not a valid safetensors file"):
        load_checkpoint(d, make()[0])
    write_old_format(d, 2, model, opt, {})
    with pytest.raises(CheckpointError, match="mismatched"):
        load_checkpoint(d, make(hidden=16)[0])


def test_old_format_with_a_lost_optimizer_tensor_is_bad(d):
    model, opt = trained(2)
    write_old_format(d, 2, model, opt, {})
    from safetensors.torch import load_file
    tensors = load_file(d / "step_2.safetensors")
    del tensors["optimizer.1.exp_avg_sq"]
    save_file(tensors, str(d / "step_2.safetensors"))
    fresh, fresh_opt = make(seed=2)
    before = snapshot(fresh)
    with pytest.raises(CheckpointError, match="parameter 1 lacks exp_avg_sq"):
        load_checkpoint(d, fresh, {"main": fresh_opt})
    assert same(before, snapshot(fresh))


def test_symlinks_planted_in_the_checkpoint_directory_are_never_written_through(d, tmp_path):
    model, opt = trained(2)
    d.mkdir()
    pointees = []
    for i, name in enumerate([".step_2.safetensors.tmp", ".step_2.json.tmp", "step_2.safetensors", "step_2.json"]):
        pointee = tmp_path / f"outside-{i}"
        pointee.write_text("precious")
        (d / name).symlink_to(pointee)
        pointees.append(pointee)
    save(d, 2, model, opt)
    assert all(p.read_text() == "precious" for p in pointees)
    for name in ("step_2.safetensors", "step_2.json"):
        assert (d / name).is_file() and not (d / name).is_symlink()
    fresh = make(seed=1)[0]
    load_checkpoint(d, fresh)
    assert same(snapshot(model), snapshot(fresh))


def test_a_symlinked_checkpoint_file_is_refused_on_load(d, tmp_path):
    model, opt = trained(2)
    save(d, 2, model, opt)
    real = tmp_path / "elsewhere.safetensors"
    (d / "step_2.safetensors").rename(real)
    (d / "step_2.safetensors").symlink_to(real)
    with pytest.raises(CheckpointError, match=r"step_2\.safetensors: it is a symbolic link"):
        load_checkpoint(d, make()[0])


def temp_files(d):
    return [p.name for p in d.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("which", [b'"format"', b"model."], ids=["marker", "tensors"])
def test_disk_full_while_saving_leaves_no_partial_checkpoint(d, monkeypatch, which):
    model, opt = trained(1)
    save(d, 1, model, opt)
    real_write = os.write

    def full(fd, data):
        if which in bytes(data[:4096]):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(UserError) as info:
        save(d, 2, model, opt)
    message = str(info.value)
    assert "\n" not in message and str(d / "step_2.safetensors") in message and "the disk is full" in message
    monkeypatch.undo()
    assert not (d / "step_2.json").exists() and not (d / "step_2.safetensors").exists()
    assert temp_files(d) == []
    assert intact_checkpoints(d) == [1]


def test_read_only_file_system_while_saving(d, monkeypatch):
    model, opt = trained(1)
    d.mkdir()
    make_file_creation_fail(monkeypatch, errno.EROFS)
    with pytest.raises(UserError, match=r"saving checkpoint .*step_1\.safetensors: read-only file system"):
        save(d, 1, model, opt)
    monkeypatch.undo()
    assert list(d.iterdir()) == []


def test_extra_may_not_shadow_reserved_keys(d):
    model, opt = trained(1)
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(d, 1, model, {"main": opt}, {"file": "x"})
    assert not d.exists()


def test_atomic_write_text_is_still_exported():
    from latentquant import fsio
    assert ckpt.atomic_write_text is fsio.atomic_write_text
