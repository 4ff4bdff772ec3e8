"""KID, precision/recall, density/coverage, classifier score and discriminator accuracy."""
import numpy as np
import pytest

from tfx_gan.metrics.classifier_score import classifier_score, confident_class_shares, confident_fraction
from tfx_gan.metrics.density_coverage import density_coverage
from tfx_gan.metrics.discriminator_accuracy import discriminator_accuracy
from tfx_gan.metrics.kid import kernel_inception_distance, polynomial_mmd2_unbiased
from tfx_gan.metrics.precision_recall import precision_recall


# --- KID ---------------------------------------------------------------------------------------

def test_kid_near_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(0)
    # The spread of KID over independent draws is its error bar (what the evaluator reports).
    same = [kernel_inception_distance(rng.normal(size=(300, 16)), rng.normal(size=(300, 16)), num_subsets=5)
            for _ in range(8)]
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    shifted = kernel_inception_distance(x, y + 0.5, num_subsets=5)
    assert abs(np.mean(same)) < 3 * np.std(same, ddof=1) / np.sqrt(len(same))
    assert shifted > 10 * np.std(same, ddof=1)


def test_kid_is_unbiased_on_average():
    # Mean over many independent small samples of one distribution stays ~0 (a biased estimator
    # with m=20 would sit clearly above 0).
    rng = np.random.default_rng(1)
    values = [polynomial_mmd2_unbiased(rng.normal(size=(20, 4)), rng.normal(size=(20, 4))) for _ in range(400)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))


def test_kid_matches_hand_computed_kernel_on_tiny_input():
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    expected = k(x[0], x[1]) + k(y[0], y[1]) - 0.5 * sum(k(a, b) for a in x for b in y)
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(expected)
    assert kernel_inception_distance(x, y, num_subsets=3) == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"num_subsets": 0}, "num_subsets"), ({"subset_size": 1}, "subset_size"), ({"num_subsets": 2.5}, "num_subsets")],
)
def test_kid_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(np.zeros((4, 2)), np.zeros((4, 2)), **kwargs)
    with pytest.raises(ValueError, match="different feature dimensions"):
        kernel_inception_distance(np.zeros((4, 2)), np.zeros((4, 3)))


# --- precision / recall ----------------------------------------------------------------------

def test_precision_recall_identical_sets():
    x = np.random.default_rng(2).normal(size=(200, 8))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)


def test_precision_recall_disjoint_far_clusters():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(100, 8)), rng.normal(size=(100, 8)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_precision_recall_fake_is_one_of_two_real_modes():
    # Real: two far clusters; fake: exactly the points of the first. Every fake is realistic
    # (precision 1) but half of the real data is missed (recall 0.5).
    rng = np.random.default_rng(4)
    real = np.concatenate([rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 50.0])
    assert precision_recall(real, real[:200]) == (1.0, 0.5)
    # Fresh draws from the first mode: precision near 1 (a few tail samples fall outside the
    # k=3 balls), recall at most 0.5.
    precision, recall = precision_recall(real, rng.normal(size=(200, 4)))
    assert precision > 0.9 and 0.4 < recall <= 0.5


def test_precision_recall_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 4 samples"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 2)), k=0)


# --- density / coverage -----------------------------------------------------------------------

def test_density_coverage_identical_and_same_distribution():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 6))
    density, coverage = density_coverage(x, x.copy())
    assert coverage == 1.0 and density >= 1.0  # each point sits at its own ball's centre
    density, coverage = density_coverage(x, rng.normal(size=(500, 6)))
    assert 0.8 < density < 1.2 and 0.9 < coverage <= 1.0


def test_density_coverage_far_and_collapsed():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(300, 4))
    assert density_coverage(real, real + 100.0) == (0.0, 0.0)
    # Mode collapse onto one real point: high density there, tiny coverage.
    collapsed = np.repeat(real[:1], 300, axis=0)
    density, coverage = density_coverage(real, collapsed)
    assert coverage < 0.05 and density > 0.1


def test_density_hand_computed():
    real = np.array([[0.0], [1.0], [2.0], [10.0]])  # k=1 radii: 1, 1, 1, 8
    fake = np.array([[0.5], [9.0]])  # 0.5 is in the balls of 0 and 1; 9 is in the ball of 10 (and of 2? no: |9-2|=7 > 1)
    density, coverage = density_coverage(real, fake, k=1)
    assert density == pytest.approx(3 / 2)
    assert coverage == pytest.approx(3 / 4)  # balls of 0, 1, 10


# --- classifier score ---------------------------------------------------------------------------

def test_classifier_score_one_hot_uniform_classes_is_k():
    k = 7
    probabilities = np.eye(k)[np.arange(70) % k]
    assert classifier_score(probabilities) == pytest.approx(k)


def test_classifier_score_one_class_or_uninformative_is_one():
    assert classifier_score(np.eye(5)[np.zeros(20, dtype=int)]) == pytest.approx(1.0)
    assert classifier_score(np.full((20, 5), 0.2)) == pytest.approx(1.0)


def test_classifier_score_half_the_classes():
    probabilities = np.eye(10)[np.arange(100) % 5]
    assert classifier_score(probabilities) == pytest.approx(5.0)


def test_confidence_helpers():
    probabilities = np.array([[0.95, 0.05, 0.0], [0.1, 0.9, 0.0], [0.4, 0.3, 0.3], [0.97, 0.03, 0.0]])
    assert confident_fraction(probabilities, 0.9) == pytest.approx(0.75)
    np.testing.assert_allclose(confident_class_shares(probabilities, 0.9), [2 / 3, 1 / 3, 0.0])
    np.testing.assert_array_equal(confident_class_shares(probabilities, 0.99), [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "probabilities, message",
    [
        (np.array([[2.0, -1.0]]), "non-negative"),
        (np.array([[0.3, 0.3]]), "sum to 1"),
        (np.array([1.0, 0.0]), r"\[N, K\]"),
        (np.array([[np.nan, 1.0]]), "finite"),
    ],
)
def test_classifier_score_bad_inputs_raise(probabilities, message):
    with pytest.raises(ValueError, match=message):
        classifier_score(probabilities)


def test_confidence_bad_threshold_raises():
    with pytest.raises(ValueError, match="threshold"):
        confident_fraction(np.eye(2), 0.0)


# --- discriminator accuracy -----------------------------------------------------------------------

def test_discriminator_accuracy():
    result = discriminator_accuracy([2.0, 1.0, -1.0, 0.5], np.array([[-3.0], [0.2], [0.0]]))
    assert result.real_acc == pytest.approx(0.75)
    assert result.fake_acc == pytest.approx(1 / 3)
    assert result.mean == pytest.approx((0.75 + 1 / 3) / 2)
    real_acc, fake_acc, mean = discriminator_accuracy([1.0], [-1.0])
    assert (real_acc, fake_acc, mean) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "real, fake, message",
    [([], [1.0], "real_logits is empty"), ([1.0], [[1.0, 2.0]], "fake_logits must be"), ([np.nan], [1.0], "NaN")],
)
def test_discriminator_accuracy_bad_inputs_raise(real, fake, message):
    with pytest.raises(ValueError, match=message):
        discriminator_accuracy(real, fake)
