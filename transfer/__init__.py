"""edgeft.transfer: datasets -> cached features -> which backbone (compare) -> a trained head -> fine-tuning, and their reports.

Training needs the `export` extra (TensorFlow); it is imported by the functions that train,
so planning, extraction and the sample drive run with the runtime alone.
"""

from .compare import Candidate, CompareConfig, Comparison, parse_candidates  # compare() itself: edgeft.transfer.compare.compare
from .datasets import AUGMENTATIONS, Item, Plan, is_driving_log, plan_class_folders, plan_dataset, plan_driving_log
from .extract import ExtractConfig, FeatureSet, extract, extraction_report, extraction_settings, load_features
from .finetune import FinetuneConfig, finetune, finetune_summary
from .logme import LogME, logme
from .train import HeadConfig, train_head

__all__ = [
    "AUGMENTATIONS", "Candidate", "CompareConfig", "Comparison", "ExtractConfig", "LogME", "logme", "parse_candidates", "FeatureSet", "FinetuneConfig", "HeadConfig", "Item", "Plan", "extract",
    "extraction_report", "extraction_settings", "finetune", "finetune_summary", "is_driving_log", "load_features",
    "plan_class_folders", "plan_dataset", "plan_driving_log", "train_head",
]
