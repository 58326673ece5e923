"""The Python API: the one place that knows the whole pipeline, text -> checked network -> compiled
network -> runs. The commands (specc.cli) only render what these functions return."""
from __future__ import annotations

from specc.api.experiments import comparison, sweeping, with_init
from specc.api.front import (
                             check_any,
                             check_file,
                             check_graph,
                             check_source,
                             check_text,
                             check_training_memory,
                             compile,
                             compiled,
                             generated_code,
                             ir_document,
                             load,
                             read,
                             summary,
)
from specc.api.graphs import drawing, explanation, explanation_drawing, graph_evaluation
from specc.api.inside import (
                             ActivationReport,
                             FilterReport,
                             MisclassifiedReport,
                             Precision,
                             activation_histograms,
                             filter_images,
                             misclassified_images,
                             precisions,
)
from specc.api.plans import scale_plan
from specc.api.reports import RunReport, run_report
from specc.api.runs import Prediction, evaluation, prediction, trained, training

__all__ = ["check_any", "check_graph", "graph_evaluation", "drawing", "explanation", "explanation_drawing",
           "check_training_memory", "check_file", "check_text", "check_source", "compile", "compiled", "evaluation",
           "generated_code", "ir_document", "Prediction", "prediction", "trained", "load", "read", "RunReport",
           "run_report", "summary", "training", "with_init", "comparison", "sweeping", "load_source",
           "ActivationReport", "FilterReport", "MisclassifiedReport", "Precision", "activation_histograms",
           "filter_images", "misclassified_images", "precisions", "scale_plan"]
