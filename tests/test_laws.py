"""The functional forms: predictions, parameter round trips and analytic Jacobians."""

import numpy as np
import pytest

from pytest_scaling.fitting.laws import ChinchillaLaw, KaplanLaw, PowerLaw


def test_chinchilla_predicts_the_formula():
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    N, D = np.array([1e8, 7e10]), np.array([2e9, 1.4e12])
    expected = 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28
    np.testing.assert_allclose(ChinchillaLaw().predict(p, N=N, D=D), expected, rtol=1e-12)
    assert isinstance(ChinchillaLaw().predict(p, N=1e9, D=2e10), float)


def test_power_law_with_and_without_offset():
    law = PowerLaw()
    x = np.logspace(3, 9, 7)
    np.testing.assert_allclose(law.predict({"E": 2.0, "A": 30.0, "alpha": 0.3}, x=x), 2 + 30 * x**-0.3)
    pure = PowerLaw(offset=False)
    params = pure.params(pure.theta({"A": 8.8e13**0.076, "alpha": 0.076}))
    assert params["x_c"] == pytest.approx(8.8e13, rel=1e-9)  # Kaplan's L = (N_c/N)^alpha_N
    np.testing.assert_allclose(pure.predict(params, x=x), (8.8e13 / x) ** 0.076, rtol=1e-12)


def test_kaplan_joint_form():
    p = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    N, D = np.array([1e6, 1e9]), np.array([1e9, 1e11])
    expected = ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095
    np.testing.assert_allclose(KaplanLaw().predict(p, N=N, D=D), expected, rtol=1e-12)


def test_predict_needs_every_input():
    with pytest.raises(TypeError, match="missing"):
        ChinchillaLaw().predict({"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}, N=1e9)


@pytest.mark.parametrize("law", [ChinchillaLaw(), KaplanLaw(), PowerLaw(), PowerLaw(offset=False)], ids=repr)
def test_jacobian_matches_finite_differences(law, rng):
    X = np.log(rng.uniform(1e6, 1e10, size=(7, len(law.inputs))))
    theta = law.init_grid()[rng.choice(len(law.init_grid()), 3)] + rng.uniform(0.1, 0.4, (3, len(law.theta_names)))
    logp, J = law.log_predict(theta, X)
    eps = 1e-6
    for i in range(len(law.theta_names)):
        bump = theta.copy()
        bump[:, i] += eps
        numeric = (law.log_predict(bump, X)[0] - logp) / eps
        np.testing.assert_allclose(J[i], numeric, rtol=1e-4, atol=1e-6)


def test_hoffmann_grid_has_4500_starts():
    grid = ChinchillaLaw().init_grid()
    assert grid.shape == (4500, 5)
    assert sorted(set(grid[:, 3])) == [0.0, 0.5, 1.0, 1.5, 2.0]  # alpha
    assert sorted(set(grid[:, 0])) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]  # a
    assert sorted(set(grid[:, 2])) == [-1.0, -0.5, 0.0, 0.5, 1.0]  # e


def test_each_law_writes_its_form_and_its_fit():
    from pytest_scaling.fitting.laws import CURVE_LAW, ChinchillaLaw, PowerLaw

    assert CURVE_LAW.formula == "L(C) = E + A * C^-alpha"
    assert CURVE_LAW.text({"E": 2.8137, "A": 45.1, "alpha": 0.065}) == "L(C) = 2.814 + 45.1·C^-0.0650"
    assert CURVE_LAW.predict({"E": 2.0, "A": 4.0, "alpha": 0.5}, C=[4.0, 16.0]) == pytest.approx([4.0, 3.0])
    kaplan_n = PowerLaw(offset=False, x="N")
    assert kaplan_n.text({"A": 1.0, "alpha": 0.076, "x_c": 8.8e13}) == "L(N) = (8.8e+13 / N)^0.0760"
    chinchilla = ChinchillaLaw()
    assert chinchilla.text({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}) == (
        "L(N, D) = E + A / N^alpha + B / D^beta with E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28")
