"""Tests of fisherbook.optim: the optimisers, the radius/step-size dictionary, the errors."""

from __future__ import annotations

import numpy as np
import pytest

from fisherbook.errors import FisherbookError, SingularFisherError
from fisherbook.optim import (
    OptimisationError,
    constrained_step,
    euclidean_step_for_radius,
    gradient_descent,
    iterations_to_reach,
    natural_direction,
    natural_gradient_descent,
    natural_step_for_radius,
    natural_step_size_for_radius,
    step_length_along,
    step_size_for_radius,
)

A = np.array([[3.0, 1.0], [1.0, 2.0]])
B = np.array([1.0, -2.0])
THETA_STAR = np.linalg.solve(A, B)


def quad_loss(theta: np.ndarray) -> float:
    """1/2 theta^T A theta - b^T theta."""
    return float(0.5 * theta @ A @ theta - B @ theta)


def quad_grad(theta: np.ndarray) -> np.ndarray:
    return A @ theta - B


def test_gradient_descent_path_and_losses():
    result = gradient_descent(quad_grad, [0.0, 0.0], step=0.1, n_steps=5, loss=quad_loss)
    assert result.path.shape == (6, 2)
    assert result.losses.shape == (6,)
    # the first step is exactly -0.1 * grad at 0
    np.testing.assert_allclose(result.path[1], 0.1 * B)
    # one step by hand from the recorded previous iterate
    np.testing.assert_allclose(result.path[5], result.path[4] - 0.1 * quad_grad(result.path[4]))
    assert np.all(np.diff(result.losses) < 0)
    assert result.n_steps == 5 and result.steps.shape == (5, 2)


def test_gradient_descent_converges_on_a_quadratic():
    result = gradient_descent(quad_grad, [5.0, -5.0], step=0.2, n_steps=500)
    np.testing.assert_allclose(result.theta, THETA_STAR, atol=1e-10)


def test_gradient_descent_without_loss_records_none_and_calls_callback():
    seen = []
    result = gradient_descent(quad_grad, [1.0, 1.0], step=0.1, n_steps=3,
                              callback=lambda t, th: seen.append(t))
    assert result.losses is None
    assert seen == [0, 1, 2, 3]


def test_natural_gradient_descent_with_fisher_equal_hessian_is_newton():
    result = natural_gradient_descent(quad_grad, lambda th: A, [7.0, 3.0], step=1.0, n_steps=1)
    np.testing.assert_allclose(result.theta, THETA_STAR, atol=1e-12)


def test_natural_gradient_descent_uses_damping():
    damping = 0.5
    result = natural_gradient_descent(quad_grad, lambda th: A, [1.0, 1.0], step=0.3, n_steps=1,
                                      damping=damping)
    expected = np.array([1.0, 1.0]) - 0.3 * np.linalg.solve(A + damping * np.eye(2),
                                                            quad_grad(np.array([1.0, 1.0])))
    np.testing.assert_allclose(result.theta, expected)


def test_target_loss_stops_early():
    target = quad_loss(THETA_STAR) + 1e-6
    result = gradient_descent(quad_grad, [5.0, -5.0], step=0.2, n_steps=10_000, loss=quad_loss,
                              target_loss=target)
    assert result.stopped_early
    assert result.losses[-1] <= target < result.losses[-2]
    assert iterations_to_reach(result.losses, target) == result.n_steps


def test_singular_fisher_raises_with_condition_number_and_damping_cures_it():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(SingularFisherError, match="positive definite"):
        natural_gradient_descent(quad_grad, lambda th: singular, [0.0, 0.0], step=1.0, n_steps=1)
    nearly = np.diag([1.0, 1e-14])
    with pytest.raises(SingularFisherError, match="condition number 1e\\+14"):
        natural_gradient_descent(quad_grad, lambda th: nearly, [0.0, 0.0], step=1.0, n_steps=1)
    result = natural_gradient_descent(quad_grad, lambda th: singular, [0.0, 0.0], step=1.0,
                                      n_steps=1, damping=1e-3)
    assert np.all(np.isfinite(result.theta))


def test_bad_settings_raise_clear_errors():
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(OptimisationError, match="step"):
            gradient_descent(quad_grad, [0.0, 0.0], step=bad, n_steps=1)
    with pytest.raises(OptimisationError, match="exactly one"):
        gradient_descent(quad_grad, [0.0, 0.0], n_steps=1)
    with pytest.raises(OptimisationError, match="exactly one"):
        gradient_descent(quad_grad, [0.0, 0.0], step=0.1, radius=0.1, n_steps=1)
    with pytest.raises(OptimisationError, match="n_steps"):
        gradient_descent(quad_grad, [0.0, 0.0], step=0.1, n_steps=-1)
    with pytest.raises(OptimisationError, match="damping"):
        natural_gradient_descent(quad_grad, lambda th: A, [0.0, 0.0], step=0.1, n_steps=1,
                                 damping=-1.0)
    with pytest.raises(OptimisationError, match="theta0"):
        gradient_descent(quad_grad, [0.0, np.nan], step=0.1, n_steps=1)
    with pytest.raises(OptimisationError, match="shape"):
        gradient_descent(lambda th: np.ones(3), [0.0, 0.0], step=0.1, n_steps=1)
    with pytest.raises(OptimisationError, match="target_loss needs a loss"):
        gradient_descent(quad_grad, [0.0, 0.0], step=0.1, n_steps=1, target_loss=0.0)
    with pytest.raises(OptimisationError, match="symmetric"):
        natural_gradient_descent(quad_grad, lambda th: np.array([[1.0, 2.0], [0.0, 1.0]]),
                                 [0.0, 0.0], step=0.1, n_steps=1)
    assert issubclass(OptimisationError, FisherbookError)


def test_divergence_is_reported_not_returned_as_nan():
    # step far above 2 / lambda_max: the iterates blow up; the error must name the step
    with pytest.raises(OptimisationError, match="non-finite|not finite"):
        gradient_descent(quad_grad, [1.0, 1.0], step=10.0, n_steps=2000)
    with pytest.raises(OptimisationError, match="loss is not finite"):
        gradient_descent(lambda th: 1.0 / th, [1.0], step=2.0, n_steps=5,
                         loss=lambda th: float(np.log(th[0])))


def test_radius_steps_have_the_promised_size():
    rng = np.random.default_rng(1)
    g = rng.standard_normal(3)
    M = rng.standard_normal((3, 3))
    F = M @ M.T + 0.1 * np.eye(3)
    d_euclid = euclidean_step_for_radius(g, 0.3)
    assert np.linalg.norm(d_euclid) == pytest.approx(0.3)
    assert step_size_for_radius(g, 0.3) == pytest.approx(0.3 / np.linalg.norm(g))
    d_nat = natural_step_for_radius(g, F, 0.02)
    assert 0.5 * d_nat @ F @ d_nat == pytest.approx(0.02)
    np.testing.assert_allclose(d_nat, -natural_step_size_for_radius(g, F, 0.02)
                               * np.linalg.solve(F, g))
    np.testing.assert_allclose(natural_direction(g, F), np.linalg.solve(F, g))
    # among steps on the KL ellipse, the natural step has the lowest first-order loss g.d
    for u in rng.standard_normal((200, 3)):
        d = u * np.sqrt(2 * 0.02 / (u @ F @ u))
        assert g @ d >= g @ d_nat - 1e-12
    with pytest.raises(OptimisationError, match="gradient is zero"):
        euclidean_step_for_radius(np.zeros(3), 0.1)


def test_radius_driven_optimisers_take_steps_of_that_size():
    gd = gradient_descent(quad_grad, [5.0, -5.0], radius=0.05, n_steps=10)
    np.testing.assert_allclose(np.linalg.norm(gd.steps, axis=1), 0.05)
    ngd = natural_gradient_descent(quad_grad, lambda th: A, [5.0, -5.0], radius=0.01, n_steps=10)
    kl2 = 0.5 * np.einsum("ti,ij,tj->t", ngd.steps, A, ngd.steps)
    np.testing.assert_allclose(kl2, 0.01)


def test_constrained_step_matches_closed_forms_on_a_quadratic_constraint():
    rng = np.random.default_rng(2)
    M = rng.standard_normal((2, 2))
    F = M @ M.T + 0.5 * np.eye(2)
    theta = np.array([0.3, -0.2])
    g = quad_grad(theta)
    # a linear loss: the constrained problem is exactly the closed-form one
    d = constrained_step(lambda th: float(g @ th), lambda d: 0.5 * d @ F @ d, theta, 1e-3)
    np.testing.assert_allclose(d, natural_step_for_radius(g, F, 1e-3), rtol=1e-5, atol=1e-9)
    d = constrained_step(lambda th: float(g @ th), lambda d: 0.5 * d @ d, theta, 1e-3)
    np.testing.assert_allclose(d, euclidean_step_for_radius(g, np.sqrt(2e-3)), rtol=1e-5,
                               atol=1e-9)


@pytest.mark.parametrize("fisher", [
    np.array([[1.0, 1.0], [1.0, 1.0]]),           # singular
    np.array([[1.0, 0.0], [0.0, 1e-14]]),          # numerically singular
    np.array([[1.0, 0.0], [0.0, -1.0]]),           # not positive definite
])
def test_natural_direction_and_radius_step_refuse_a_singular_fisher(fisher):
    g = np.array([1.0, 0.5])
    for call in (lambda: natural_direction(g, fisher),
                 lambda: natural_step_for_radius(g, fisher, 0.1),
                 lambda: natural_step_size_for_radius(g, fisher, 0.1)):
        with pytest.raises(SingularFisherError, match="add damping"):
            call()


def test_natural_direction_damping_cures_a_singular_fisher_and_bad_damping_is_refused():
    F = np.array([[1.0, 1.0], [1.0, 1.0]])
    g = np.array([1.0, 1.0])
    np.testing.assert_allclose(natural_direction(g, F, damping=1.0),
                               np.linalg.solve(F + np.eye(2), g))
    with pytest.raises(OptimisationError, match="damping"):
        natural_direction(g, F, damping=-1.0)
    with pytest.raises(OptimisationError, match="symmetric"):
        natural_direction(g, np.array([[2.0, 1.0], [0.0, 2.0]]))


def test_step_length_along_solves_the_radial_equation():
    F = np.array([[2.0, 0.3], [0.3, 0.5]])
    u = np.array([0.6, -0.8])
    r = step_length_along(lambda d: 0.5 * d @ F @ d, u, 0.01)
    np.testing.assert_allclose(r, np.sqrt(0.02 / (u @ F @ u)), rtol=1e-12)
    # a divergence that is infinite beyond r = 1 (the edge of a domain) and 0.5 r^2 before it
    edge = step_length_along(lambda d: 0.5 * d @ d if d @ d < 1 else np.inf, [1.0, 0.0], 0.125)
    np.testing.assert_allclose(edge, 0.5, rtol=1e-12)
    with pytest.raises(OptimisationError, match="never reaches"):
        step_length_along(lambda d: 0.0, [1.0, 0.0], 0.1)
    with pytest.raises(OptimisationError, match="zero vector"):
        step_length_along(lambda d: d @ d, [0.0, 0.0], 0.1)


def test_constrained_step_in_three_dimensions_matches_the_closed_form():
    F = np.diag([1.0, 4.0, 9.0])
    g = np.array([1.0, -2.0, 0.5])
    d = constrained_step(lambda th: float(g @ th), lambda d: 0.5 * d @ F @ d, np.zeros(3), 1e-4)
    np.testing.assert_allclose(d, natural_step_for_radius(g, F, 1e-4), rtol=1e-6)


#: Seed of the 200 data sets on which the exact constrained step must converge.
DATA_SETS_SEED = 7


def test_constrained_kl_step_converges_for_200_data_sets_at_small_radii():
    """The exact KL-constrained step of a normal fit, over many data sets and tiny radii.

    Closed forms (numpy, independent of the package): mean negative log-likelihood
    log s + mean((x - m)^2) / (2 s^2), KL(N(m, s^2) || N(m', s'^2)) and F = diag(1, 2) / s^2.
    The exact step meets the constraint, and its angle to the natural gradient direction
    shrinks like sqrt(radius) (first-order theory): a 100 times smaller radius gives an angle
    about 10 times smaller (asserted within a factor of 2).
    """
    rng = np.random.default_rng(DATA_SETS_SEED)
    theta = np.array([1.0, 1.2])
    radii = [1e-2, 1e-4]

    def kl(a, b):
        return np.log(b[1] / a[1]) + (a[1] ** 2 + (a[0] - b[0]) ** 2) / (2 * b[1] ** 2) - 0.5

    for _ in range(200):
        x = rng.normal(2.0, 1.5, size=200)

        def loss(th, x=x):
            return np.inf if th[1] <= 0 else np.log(th[1]) + np.mean((x - th[0]) ** 2) / (
                2 * th[1] ** 2)

        m, s = theta
        g = np.array([(m - x.mean()) / s ** 2, 1 / s - np.mean((x - m) ** 2) / s ** 3])
        natural = -np.linalg.solve(np.diag([1 / s ** 2, 2 / s ** 2]), g)
        angles = []
        for radius in radii:
            d = constrained_step(loss, lambda d: kl(theta, theta + d), theta, radius)
            assert abs(kl(theta, theta + d) / radius - 1) < 1e-9
            cosine = d @ natural / (np.linalg.norm(d) * np.linalg.norm(natural))
            angles.append(np.degrees(np.arccos(min(cosine, 1.0))))
        assert angles[1] < 2.0
        expected_ratio = np.sqrt(radii[1] / radii[0])
        assert 0.5 * expected_ratio < angles[1] / angles[0] < 2 * expected_ratio


def test_iterations_to_reach():
    assert iterations_to_reach(np.array([3.0, 2.0, 1.0, 0.5]), 1.0) == 2
    assert iterations_to_reach(np.array([3.0, 2.0]), 1.0) is None
