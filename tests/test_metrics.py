"""Metrics against values worked out by hand."""

import numpy as np
import pytest

from larnn.metrics import classification_report, confusion_matrix


def test_confusion_matrix_counts_true_rows_predicted_columns():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_report_matches_hand_computation():
    y_true = np.array([0, 0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0])
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2 F 1/2; b: P 1/2 R 1 F 2/3; c: P 1 R 1/2 F 2/3
    assert report.per_class["b"]["f1"] == pytest.approx(2 / 3)
    assert report.macro_f1 == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert "confusion" in report.format()


def test_a_class_never_predicted_counts_as_zero_f1():
    report = classification_report(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert report.per_class["b"]["f1"] == 0.0
    assert report.macro_f1 == pytest.approx((2 / 3 + 0) / 2)
