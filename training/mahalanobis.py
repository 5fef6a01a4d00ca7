"""A class-conditional Gaussian with tied covariance on a network's features (Lee et al. 2018,
"A simple unified framework for detecting out-of-distribution samples"), its minimum
Mahalanobis distance as an OOD score, and the ONNX nodes that compute that score in the graph.

score(f) = −min_c (f̂ − μ_c)ᵀ Σ⁻¹ (f̂ − μ_c)     (higher = more in-distribution)

with f̂ = f/‖f‖ when the detector normalises, μ_c the class means and Σ the pooled within-class
covariance of the training features. Export-friendly and numerically safe in float32:
centre on c = mean of the class means, factor Σ⁻¹ = W Wᵀ (W = C⁻ᵀ, Σ = C Cᵀ Cholesky), then
z = (f̂ − c) W, m_c = (μ_c − c) W and d_c = ‖z‖² − 2 z·m_c + ‖m_c‖²: one 128×128 MatMul and one
small Gemm. Centring keeps ‖z‖² of the order of d itself, so the subtraction loses nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NORM_EPS = 1e-12  # as F.normalize and the IsoMax+ head's export clamp ‖f‖


@dataclass
class Gaussian:
    means: np.ndarray       # (C, D) class means of the (normalised) features
    covariance: np.ndarray  # (D, D) pooled within-class covariance, ridge included
    center: np.ndarray      # (D,) mean of the class means
    whiten: np.ndarray      # (D, D) W with W Wᵀ = Σ⁻¹
    normalise: bool
    ridge: float            # λ: Σ + λ·(tr Σ / D)·I
    condition: float        # condition number of the covariance used
    n: int                  # training images it was fitted on

    @property
    def precision(self) -> np.ndarray:
        return self.whiten @ self.whiten.T

    @property
    def projected_means(self) -> np.ndarray:
        return (self.means - self.center) @ self.whiten  # (C, D): m_c


def prepare(features: np.ndarray, normalise: bool) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if normalise:
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), NORM_EPS)
    return f


def fit_gaussian(features: np.ndarray, labels: np.ndarray, num_classes: int, normalise: bool,
                 ridge: float = 0.0) -> Gaussian:
    """Class means and the tied (pooled within-class, maximum-likelihood) covariance, in float64.
    `ridge` adds λ·(mean eigenvalue) to the diagonal; 0 unless the covariance is singular."""
    f = prepare(features, normalise)
    labels = np.asarray(labels)
    missing = [c for c in range(num_classes) if not np.any(labels == c)]
    if missing:
        raise ValueError(f"no training features for classes {missing}")
    means = np.stack([f[labels == c].mean(axis=0) for c in range(num_classes)])
    resid = f - means[labels]
    cov = resid.T @ resid / len(f)
    d = cov.shape[0]
    if ridge:
        cov = cov + ridge * np.trace(cov) / d * np.eye(d)
    eig = np.linalg.eigvalsh(cov)
    if eig[0] <= 0:
        raise np.linalg.LinAlgError(f"the covariance is singular (smallest eigenvalue {eig[0]:.3g}): fit with a ridge")
    chol = np.linalg.cholesky(cov)                 # Σ = C Cᵀ
    whiten = np.linalg.inv(chol).T                 # W = C⁻ᵀ: W Wᵀ = C⁻ᵀ C⁻¹ = Σ⁻¹
    return Gaussian(means=means, covariance=cov, center=means.mean(axis=0), whiten=whiten,
                    normalise=normalise, ridge=ridge, condition=float(eig[-1] / eig[0]), n=len(f))


def distances_direct(g: Gaussian, features: np.ndarray) -> np.ndarray:
    """(N, C) squared Mahalanobis distances (f̂ − μ_c)ᵀ Σ⁻¹ (f̂ − μ_c), straight from the definition."""
    f = prepare(features, g.normalise)
    prec = np.linalg.inv(g.covariance)
    diff = f[:, None, :] - g.means[None, :, :]
    return np.einsum("ncd,de,nce->nc", diff, prec, diff)


def distances_export_form(g: Gaussian, features: np.ndarray) -> np.ndarray:
    """The same distances as the ONNX nodes compute them: ‖z‖² − 2 z·m_c + ‖m_c‖²."""
    z = (prepare(features, g.normalise) - g.center) @ g.whiten
    m = g.projected_means
    return (z * z).sum(axis=1, keepdims=True) - 2 * z @ m.T + (m * m).sum(axis=1)[None, :]


def score(g: Gaussian, features: np.ndarray) -> np.ndarray:
    """−min_c d_c: higher = more in-distribution, like every score of the service."""
    return -distances_export_form(g, features).min(axis=1)


def extra_multiply_adds(g: Gaussian) -> dict[str, int]:
    """Per image, what the added nodes cost (multiply-adds; elementwise ops counted as one)."""
    c, d = g.means.shape
    parts = {"L2 norm and divide": 2 * d if g.normalise else 0, "centre": d, "whiten (MatMul D×D)": d * d,
             "‖z‖²": d, "z·m_c (Gemm)": c * d, "add ‖m_c‖², ‖z‖², min": 3 * c}
    parts["total"] = sum(parts.values())
    return parts


# --- graph surgery ----------------------------------------------------------------------------

def add_score_output(model: onnx.ModelProto, g: Gaussian, feature_tensor: str,
                     output_name: str = "mahalanobis", prefix: str = "/mahalanobis") -> onnx.ModelProto:
    """A copy of `model` with nodes computing score(g, feature_tensor) as a new float32 graph
    output `output_name` of shape [batch]. Nothing existing is changed: the original nodes,
    initializers and outputs stay as they were, so `logits` is computed exactly as before."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    taken = {n for node in graph.node for n in node.output} | {t.name for t in graph.initializer} | \
        {i.name for i in graph.input} | {o.name for o in graph.output}
    if output_name in taken:
        raise ValueError(f"the graph already has a tensor named {output_name!r}")
    if feature_tensor not in {n for node in graph.node for n in node.output}:
        raise ValueError(f"no node of the graph produces {feature_tensor!r}")
    batch = graph.output[0].type.tensor_type.shape.dim[0]

    def name(s: str) -> str:
        return f"{prefix}/{s}"

    def const(s: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name(s)))
        return name(s)

    m = g.projected_means
    nodes = []
    x = feature_tensor
    if g.normalise:
        nodes += [helper.make_node("ReduceL2", [x], [name("norm")], name=name("ReduceL2"), axes=[1], keepdims=1),
                  helper.make_node("Clip", [name("norm"), const("eps", np.array(NORM_EPS)), ""], [name("norm_clipped")],
                                   name=name("Clip")),
                  helper.make_node("Div", [x, name("norm_clipped")], [name("normalised")], name=name("Div"))]
        x = name("normalised")
    nodes += [
        helper.make_node("Sub", [x, const("center", g.center)], [name("centred")], name=name("Sub")),
        helper.make_node("MatMul", [name("centred"), const("whiten", g.whiten)], [name("z")], name=name("MatMul")),
        helper.make_node("ReduceSumSquare", [name("z")], [name("z_sq")], name=name("ReduceSumSquare"),
                         axes=[1], keepdims=1),
        # −2 z·m_c + ‖m_c‖² in one Gemm: alpha −2, B = m (transposed), C = ‖m_c‖² broadcast over the batch.
        helper.make_node("Gemm", [name("z"), const("means", m), const("means_sq", (m * m).sum(axis=1))],
                         [name("cross")], name=name("Gemm"), alpha=-2.0, beta=1.0, transB=1),
        helper.make_node("Add", [name("z_sq"), name("cross")], [name("distances")], name=name("Add")),
        helper.make_node("ReduceMin", [name("distances")], [name("min_distance")], name=name("ReduceMin"),
                         axes=[1], keepdims=0),
        helper.make_node("Neg", [name("min_distance")], [output_name], name=name("Neg")),
    ]
    graph.node.extend(nodes)
    value = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None])
    value.type.tensor_type.shape.dim[0].CopyFrom(batch)  # the same dynamic axis ("batch") as logits
    graph.output.append(value)
    onnx.checker.check_model(out)
    return out
