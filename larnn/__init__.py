"""larnn: the Linear Attention Recurrent Neural Network (arXiv 1808.05578) in PyTorch."""

from larnn.classifier import ClassifierConfig, SequenceClassifier
from larnn.model import LARNN, AttentionRecord, InferenceKnobs, LARNNConfig, LARNNState

__version__ = "0.1.0"

__all__ = [
    "LARNN",
    "AttentionRecord",
    "ClassifierConfig",
    "InferenceKnobs",
    "LARNNConfig",
    "LARNNState",
    "SequenceClassifier",
    "__version__",
]
