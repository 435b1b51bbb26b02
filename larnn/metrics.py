"""Classification metrics computed from labels and predictions (plain numpy)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # class -> precision, recall, f1, support
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1}

    def format(self) -> str:
        """A printable table: per-class precision/recall/F1, then the confusion matrix."""
        names = list(self.per_class)
        width = max(12, *(len(n) for n in names))
        lines = [f"accuracy {self.accuracy:.4f}   macro-F1 {self.macro_f1:.4f}", ""]
        lines.append(f"{'class':<{width}} precision  recall     f1  support")
        for name, row in self.per_class.items():
            lines.append(
                f"{name:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} "
                f"{row['f1']:6.4f} {int(row['support']):8d}"
            )
        lines += ["", "confusion (rows: true, columns: predicted)"]
        lines += [" ".join(f"{count:5d}" for count in row) for row in self.confusion]
        return "\n".join(lines)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str] | tuple[str, ...]
) -> ClassificationReport:
    """Accuracy, macro-F1 (mean over classes of F1, 0 where undefined) and per-class rows."""
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(true_positive), where=denominator > 0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    accuracy = float(true_positive.sum() / max(1, matrix.sum()))
    return ClassificationReport(accuracy, float(f1.mean()), per_class, matrix.tolist())
