"""skot.io: model files that load bit-identically and never run code from the file."""

import io
import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from skot import OTFlowDensity, QFlowTransport, SJKOGenerator, TelescopingRatioEstimator
from skot.da import ImportanceWeightedEstimator
from skot.io import dump, load

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 2))
Y = 0.5 * X + 1.0
FAST = dict(max_iter=5, random_state=0)


def fitted(name):
    """A small fit of each kind the file must hold (a nested Q-flow, a set_output config)."""
    if name == "qflow":
        return QFlowTransport(init_max_iter=5, **FAST).fit(X, Y)
    if name == "qflow-pandas":
        return QFlowTransport(init_max_iter=5, **FAST).set_output(transform="pandas").fit(X, Y)
    if name == "qflow-baseline":
        return QFlowTransport(init_max_iter=5, baseline="gaussian", **FAST).fit(X, Y)
    if name == "qflow-conditional":
        labels = np.repeat(["a", "b"], len(X) // 2)
        model = QFlowTransport(init_max_iter=5, **FAST)
        return model.fit(X, Y, condition=labels, target_condition=labels)
    if name == "ratio-qflow":
        bridge = QFlowTransport(max_iter=2, init_max_iter=5)
        return TelescopingRatioEstimator(transport=bridge, **FAST).fit(X, Y)
    if name == "ratio-quadratic":
        return TelescopingRatioEstimator(bridge="linear", quadratic=True, **FAST).fit(X, Y)
    if name == "ratio-baseline":
        return TelescopingRatioEstimator(bridge="linear", baseline="gaussian", **FAST).fit(X, Y)
    if name == "otflow":
        return OTFlowDensity(**FAST).fit(X)
    if name == "sjko":
        return SJKOGenerator(**FAST).fit(X)
    raise KeyError(name)


def round_trip(estimator):
    buffer = io.BytesIO()
    dump(estimator, buffer)
    buffer.seek(0)
    return load(buffer)


def assert_same(a, b, where="estimator"):
    """Equal in value and type, networks by weights, flags and config."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, torch.nn.Module):
        assert a.config == b.config and a.training == b.training, where
        for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(p, q), f"{where}.{key}"
        assert [p.requires_grad for p in a.parameters()] == [
            p.requires_grad for p in b.parameters()
        ], where
    elif isinstance(a, sklearn.base.BaseEstimator):
        assert vars(a).keys() == vars(b).keys(), where
        for key in vars(a):
            assert_same(vars(a)[key], vars(b)[key], f"{where}.{key}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (p, q) in enumerate(zip(a, b)):
            assert_same(p, q, f"{where}[{i}]")
    elif type(a).__name__ == "MetadataRequest":
        assert a._serialize() == b._serialize(), where
    else:
        assert a == b or (a != a and b != b), where  # NaN equals NaN here


@pytest.mark.parametrize(
    "name",
    [
        "qflow",
        "qflow-pandas",
        "qflow-baseline",
        "qflow-conditional",
        "ratio-qflow",
        "ratio-quadratic",
        "ratio-baseline",
        "otflow",
        "sjko",
    ],
)
def test_a_loaded_model_has_the_same_state_and_bit_identical_outputs(name):
    model = fitted(name)
    loaded = round_trip(model)
    assert_same(model, loaded)
    labels = {}
    if getattr(model, "conditions_", None) is not None:
        labels = {"condition": np.repeat(["a", "b"], len(X) // 2)}
    for method in ("transform", "inverse_transform", "score_samples", "predict_weights"):
        if hasattr(model, method):
            expected = getattr(model, method)(X, **labels)
            got = getattr(loaded, method)(X, **labels)
            assert type(got) is type(expected), method
            np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), err_msg=method)
    if hasattr(model, "sample"):
        np.testing.assert_array_equal(
            loaded.sample(50, random_state=1), model.sample(50, random_state=1)
        )


def test_a_loaded_model_goes_on_training_with_warm_start():
    model = OTFlowDensity(**FAST).fit(X)
    loaded = round_trip(model).set_params(warm_start=True)
    # The same continuation from the saved state and from the original.
    model.set_params(warm_start=True).fit(X)
    loaded.fit(X)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_an_unfitted_estimator_loads_unfitted_with_its_parameters():
    model = QFlowTransport(gamma=0.3, hidden_layer_sizes=(16, 8), random_state=4)
    loaded = round_trip(model)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)


class _Name(str):
    """A str subclass, as some libraries hand out (torch's version string is one)."""


def test_parameters_given_as_numpy_scalars_or_str_subclasses_load_as_plain_values():
    model = QFlowTransport(max_iter=np.int64(7), gamma=np.float32(0.25), solver=_Name("dopri5"))
    params = round_trip(model).get_params()
    assert (params["max_iter"], params["gamma"], params["solver"]) == (7, 0.25, "dopri5")
    assert (type(params["max_iter"]), type(params["gamma"]), type(params["solver"])) == (
        int,
        float,
        str,
    )


def test_metadata_requests_survive():
    with sklearn.config_context(enable_metadata_routing=True):
        model = TelescopingRatioEstimator(bridge="linear").set_fit_request(
            sample_domain=True, sample_weight="w"
        )
        routing = round_trip(model).get_metadata_routing()._serialize()
        assert routing == model.get_metadata_routing()._serialize()
        assert routing["fit"]["sample_domain"] is True and routing["fit"]["sample_weight"] == "w"


def test_a_path_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "model.skot"
    model = fitted("otflow")
    dump(model, path)
    np.testing.assert_array_equal(load(path).score_samples(X), model.score_samples(X))
    # A model that cannot be saved leaves neither a file nor a temporary.
    bad = OTFlowDensity(random_state=np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"random_state.*RandomState"):
        dump(bad, tmp_path / "bad.skot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skot"]


def test_a_write_that_fails_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.skot"
    model = fitted("otflow")
    dump(model, path)

    def fail_midway(payload, stream):
        stream.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        dump(fitted("sjko"), path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skot"]
    np.testing.assert_array_equal(load(path).score_samples(X), model.score_samples(X))


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        make_pipeline(QFlowTransport()),
        ImportanceWeightedEstimator(LogisticRegression()),
    ],
    ids=["sklearn", "pipeline", "da"],
)
def test_dump_refuses_what_is_not_a_skot_estimator(estimator):
    with pytest.raises(TypeError, match=r"skot\.io saves"):
        dump(estimator, io.BytesIO())


class _Payload:
    """Writes a marker file when unpickled: the code a hostile file would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def saved_payload():
    buffer = io.BytesIO()
    dump(fitted("otflow"), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def write(payload) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    buffer.seek(0)
    return buffer


def test_a_file_edited_to_carry_a_code_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    # The payload is live: plain unpickling runs it.
    pickle.loads(pickle.dumps(_Payload(tmp_path / "live")))
    assert (tmp_path / "live").exists()

    payload = saved_payload()
    payload["estimator"]["state"]["n_iter_"] = _Payload(marker)
    with pytest.raises(ValueError, match=r"refused.*Unsupported global: GLOBAL exec"):
        load(write(payload))
    assert not marker.exists()


def edited(edit):
    payload = saved_payload()
    edit(payload)
    return write(payload)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["estimator"].update({"class": "LogisticRegression"}), "not one of skot's est"),
        (
            lambda p: p["estimator"]["state"]["potential_"].update({"class": "Sequential"}),
            "not one of skot's networks",
        ),
        (
            lambda p: p["estimator"]["state"].update({"score_samples": "not a method"}),
            "may not set attribute 'score_samples'",
        ),
        (
            lambda p: p["estimator"]["state"].update({"__class__": "QFlowTransport"}),
            "may not set attribute '__class__'",
        ),
        (
            lambda p: p["estimator"]["params"].update({"max_iter": -1}),
            "parameters are invalid",
        ),
        (
            lambda p: p["estimator"]["state"]["potential_"]["config"].update({"width": 7}),
            "does not rebuild",
        ),
        (lambda p: p["estimator"]["state"]["mean_"].update({"dtype": "|O"}), "not numeric"),
        (lambda p: p.update({"format_version": 99}), "newer than this skot reads"),
        (lambda p: p.update({"format": "other"}), "not a skot model file"),
    ],
    ids=[
        "estimator",
        "network",
        "method",
        "dunder",
        "params",
        "config",
        "dtype",
        "version",
        "format",
    ],
)
def test_an_edited_file_outside_the_schema_is_refused(edit, message):
    with pytest.raises(ValueError, match=message):
        load(edited(edit))


def test_what_is_not_a_model_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"refused.*Unsupported operand"):
        load(io.BytesIO(b"not a zip archive"))  # read as a bare pickle, and refused
    whole = io.BytesIO()
    dump(fitted("otflow"), whole)
    for cut in (len(whole.getvalue()) // 2, 100):
        with pytest.raises(ValueError, match="not a readable skot model file"):
            load(io.BytesIO(whole.getvalue()[:cut]))
    with pytest.raises(ValueError, match="not a skot model file"):
        load(write({"weights": torch.zeros(3)}))
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.skot")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_model_fitted_on_the_gpu_is_saved_on_the_cpu():
    model = OTFlowDensity(device="cuda", **FAST).fit(X)
    buffer = io.BytesIO()
    dump(model, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["estimator"]["state"]["potential_"]
    assert all(t.device.type == "cpu" for t in state["state_dict"].values())
    buffer.seek(0)
    loaded = load(buffer).set_params(device="cpu")
    np.testing.assert_allclose(loaded.score_samples(X), model.score_samples(X), atol=1e-4)
