import math
import random

import pytest

from ladts_policy.service_estimate import CorrectionConfig, ServiceTimeCorrector


def test_unknown_node_and_model_use_profile_as_is():
    assert ServiceTimeCorrector().factor("n0", "sd15") == 1.0


def test_converges_to_a_constant_slowdown():
    est = ServiceTimeCorrector()
    for _ in range(40):
        est.observe("n0", "sd15", observed_s=13.0, predicted_s=10.0)
    assert est.factor("n0", "sd15") == pytest.approx(1.3)
    assert est.observations("n0", "sd15") == 40


def test_geometric_mean_of_symmetric_noise_is_one():
    # A direct reference: with alpha = 1/k over a long run, the log-EWMA of ratios drawn
    # log-symmetrically around 1.5 stays near 1.5.
    rng = random.Random(0)
    est = ServiceTimeCorrector(CorrectionConfig(alpha=0.05))
    for _ in range(4000):
        noise = math.exp(rng.gauss(0.0, 0.1))
        est.observe("n0", "sdxl", observed_s=15.0 * noise, predicted_s=10.0)
    assert est.factor("n0", "sdxl") == pytest.approx(1.5, rel=0.05)


def test_unseen_model_borrows_the_nodes_pooled_factor():
    est = ServiceTimeCorrector()
    est.observe("slow", "sd15", observed_s=20.0, predicted_s=10.0)
    assert est.factor("slow", "sdxl") == pytest.approx(2.0)
    assert est.factor("other", "sdxl") == 1.0


def test_outliers_are_clipped_and_bad_values_ignored():
    est = ServiceTimeCorrector(CorrectionConfig(max_ratio=4.0))
    est.observe("n0", "m", observed_s=1000.0, predicted_s=1.0)
    assert est.factor("n0", "m") == pytest.approx(4.0)
    est.observe("n0", "m", observed_s=0.0, predicted_s=1.0)
    est.observe("n0", "m", observed_s=math.inf, predicted_s=1.0)
    assert est.observations("n0", "m") == 1


def test_forget_node_and_json_view():
    est = ServiceTimeCorrector()
    est.observe("n0", "m", observed_s=2.0, predicted_s=1.0)
    view = est.as_dict()
    assert view["n0"]["m"]["factor"] == pytest.approx(2.0)
    assert view["n0"]["*"]["observations"] == 1.0
    est.forget_node("n0")
    assert est.factor("n0", "m") == 1.0 and est.as_dict() == {}


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.5}, {"max_ratio": 0.5}])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        CorrectionConfig(**kwargs)
