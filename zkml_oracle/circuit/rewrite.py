"""Equivalent rewrites of an ONNX graph into forms ezkl proves.

The build proves the rewritten copy (``model.onnx`` in the build directory) while the
manifest's ``model_sha256`` names the user's file, and the fidelity check compares the
circuit against onnxruntime running the user's original, so a wrong rewrite fails the build.

Every rewrite is exact on every input (not an approximation, not only on the calibration
data). The forms emitted are ones ezkl 23 proves: zero constant padding, Gather with constant
indices (a copy, no lookup), Conv and MaxPool without dilation or padding, Relu, Mul, Add, Sub.
Gather is used in place of Slice and Pad because its signature is the same in every opset,
so a rewrite fits an opset-6 PyTorch export as well as an opset-21 one.

================  ==============================================================================
Pad, c != 0       ``Pad(x - c, 0) + c``: inside ``x - c + c = x``, on the border ``0 + c = c``.
Pad reflect/edge  one Gather per padded axis with the reflected / clamped / wrapped source index.
/wrap
Conv, dilated     the same Conv with a zero-dilated kernel (taps ``d`` apart, zeros between).
Conv, run-time    the Conv without it, then ``+ Reshape(bias, [1, C, 1, ...])`` (ezkl panics on a
bias              bias that is not a constant).
ConvTranspose     a Conv of the flipped, transposed kernel over the input interleaved with
                  ``stride - 1`` zeros and padded by ``dilation * (k - 1) - pad``
                  (Gather, then a 0/1 mask).
PRelu, per        ``relu(x) + slope * (x - relu(x))`` with the slope broadcast to x's shape.
channel
MaxPool, padded   a Gather per axis lays out each window's taps side by side, repeating a tap of
/dilated/ceil     the same window where the original reads padding, then MaxPool(kernel k, stride
                  k): the max of a window with a repeated member is the max of the window, so
                  this is exact on every input (ezkl pads MaxPool with 0, not -inf).
Conv/pool with    the defaults written out (``strides``, ``pads``, ``dilations``, kernel shape),
implicit attrs    which ezkl needs explicitly.
BatchNorm, run-   ``(x - mean) * reciprocal(sqrt(var + eps)) * scale + bias``.
time statistics
BatchNorm,        the same over the batch's own mean and (biased) variance; the running
training mode     statistics ``input * momentum + batch * (1 - momentum)``.
AveragePool,      the window sums (a depthwise Conv of ones) times a constant factor per output
padded/ceil/      position, 1 / that window's divisor (ezkl divides every window by the kernel's
dilated           size, wrong where ``count_include_pad`` is 0 or a ceil-mode window runs past).
Resize/Upsample,  per axis a Gather (nearest) or a MatMul with a constant matrix (linear, cubic),
constant scales   read off onnxruntime running the node, checked against it before use.
an operator ezkl  its function body from the ONNX spec (Gelu, Mish, Swish, MVN, GroupNorm, ...),
lacks or misreads itself rewritten again; SpaceToDepth in ``CRD`` mode (ezkl proves ``DCR``).
LpNormalization   ``x / ReduceSum(|x|)`` (p 1) or ``x / sqrt(ReduceSum(x * x))`` (p 2); a zero norm
                  divides by 1 (onnxruntime returns 0 there).
LpPool            ``|x| ** p`` (p >= 4: Muls by repeated squaring) summed per window by a
                  depthwise Conv with a kernel of ones (pads, ceil mode, auto_pad, dilations as
                  its pads and zero-dilated kernel), p-th root.
RMSNormalization  ``x / sqrt(ReduceMean(x * x) + epsilon) * scale``.
InstanceNorm      ``(x - mean) / sqrt(var + epsilon) * scale + bias`` over the spatial axes.
LRN               the channel-window sums of ``x * x`` as one MatMul with a constant band matrix.
Pow, exponent     ``sum over each exponent e of Pow(x, e) * (exponent == e)``, each a scalar power.
per element
DFT               one MatMul with the constant real matrix of the transform over (signal axis,
                  real/imaginary), read off onnxruntime.
Det, n <= 5       the Leibniz formula: per row a Gather of its factor in each of the n! terms,
                  their product, a signed ReduceSum.
GridSample,       one MatMul with a constant [input positions, output positions] matrix per
constant grid     sample, read off onnxruntime on one-hot inputs (every mode is linear in x).
DeformConv,       one MatMul with a constant matrix per sample plus the bias, read off onnxruntime
constant params   on one-hot inputs (constant weights, offsets and mask make it affine in x).
MatMul, stacks    each operand's size-1 batch axes repeated (Gather of index 0) to the broadcast
of unequal batch  size, then a MatMul of equal stacks.
Mod, float        ``x - y * trunc(x / y)`` (fmod 1) or ``x - y * Floor(x / y)`` (fmod 0).
Softplus          ``Relu(x) + Log(1 + Exp(-|x|))`` (ezkl's ``Log(1 + Exp(x))`` feeds e^x to
                  the Log's lookup).
ReduceProd        per reduced axis, the first half of the slices times the second (Gathers, Mul),
                  an odd last slice carried (Concat), until one is left (ezkl rescales only
                  after all n factors: n times the scale).
Softmax(x + m),   ``m`` a constant of finite values and -inf (a causal mask): ``x + m`` with -inf
-inf mask         as 0, then a softmax over the kept entries (``Exp(s - max) * keep / sum``);
                  ``Where(c, x, -inf)``, c constant, as ``x + Where(c, 0, -inf)`` first.
Equal(x, -inf),   False, where no infinite constant reaches x (inputs are checked finite):
x at run time     Attention's "row all masked" test of a float mask fed at run time.
Scan, static      its body repeated once a step: slice ``t`` of each scan input (Gather, Reshape),
length            the state the step before wrote; scan outputs stacked (Unsqueeze, Concat);
                  Scan-8: the same per entry of its batch axis, stacked.
a scalar input    declared ``[1]`` (as ezkl feeds it), then a Reshape to a scalar.
Shape, Size,      integer computations on constants and static shapes (a function body's axes)
Range, ...        evaluated and kept as constants.
================  ==============================================================================

Resize, DFT, GridSample, DeformConv and AveragePool's divisors are read off onnxruntime
(which the fidelity check trusts) and refused where the ONNX reference implementation
disagrees with it (Resize's align_corners downsampling).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..exceptions import UnsupportedModelError
from .support import RANDOM, UNIMPLEMENTED

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

#: A padded or dilated MaxPool becomes one element per (output, tap): past this many, the
#: circuit could not fit in 2^20 rows (the conformance suite's 4.4 M and 5.2 M tap cases ran
#: past 180 s in raw ezkl).
MAX_POOL_TAPS = 1 << 18

_POOLS = ("MaxPool", "AveragePool", "LpPool")


@dataclass
class _Graph:
    """The model being rewritten: constants, static shapes, and the nodes and notes so far."""

    model: Any
    opset: int
    constants: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    nodes: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    folded: set[str] = field(default_factory=set)  # constants computed by _fold
    elem_types: dict[str, int] = field(default_factory=dict)  # tensor element types known
    scan_states: set[str] = field(default_factory=set)  # initial states of unrolled Scans

    def constant(self, name: str) -> np.ndarray[Any, Any] | None:
        from onnx import numpy_helper

        tensor = self.constants.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def shape(self, name: str, where: str) -> tuple[int, ...]:
        found = self.shapes.get(name)
        if found is None or any(d <= 0 for d in found):
            raise UnsupportedModelError(
                f"{where}: the shape of {name!r} is not static; export the model with fixed "
                "input shapes"
            )
        return found

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The static shape of ``name``: known, or else by shape inference over the nodes
        emitted so far (a value a function body's nodes make); None if unknown."""
        import onnx

        if self.shapes.get(name):
            return self.shapes[name]  # inference never replaces a known shape
        partial = onnx.ModelProto()
        partial.CopyFrom(self.model)
        del partial.graph.node[:]
        partial.graph.node.extend(self.nodes)
        del partial.graph.value_info[:]
        self.shapes.update((k, v) for k, v in _shapes(partial).items() if k not in self.shapes)
        return self.shapes.get(name)

    def add_constant(self, name: str, value: np.ndarray[Any, Any]) -> str:
        from onnx import helper, numpy_helper

        tensor = numpy_helper.from_array(value, name)
        self.model.graph.initializer.append(tensor)
        self.constants[name] = tensor
        if self.model.ir_version < 4:  # old IRs list every initializer as a graph input too
            self.model.graph.input.append(
                helper.make_tensor_value_info(name, tensor.data_type, list(value.shape))
            )
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def gather(self, x: str, axis: int, index: np.ndarray[Any, Any], tag: str) -> str:
        import numpy as np

        idx = self.add_constant(f"{tag}_idx", np.asarray(index, dtype=np.int64))
        return self.node("Gather", [x, idx], f"{tag}_out", axis=axis)


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _set_attr(node: Any, name: str, value: Any) -> None:
    from onnx import helper

    for k, attr in enumerate(node.attribute):
        if attr.name == name:
            del node.attribute[k]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _drop_attr(node: Any, *names: str) -> None:
    keep = [a for a in node.attribute if a.name not in names]
    del node.attribute[:]
    node.attribute.extend(keep)


def _where(node: Any) -> str:
    return f"{node.op_type} node {node.name or next((o for o in node.output if o), '')!r}"


def _copy(node: Any) -> Any:
    import onnx

    out = onnx.NodeProto()
    out.CopyFrom(node)
    return out


def _pad_fill(node: Any, g: _Graph) -> tuple[float, bool]:
    """(fill value, whether it is statically known) of a constant-mode Pad."""
    if len(node.input) > 2 and node.input[2]:
        value = g.constant(node.input[2])
        if value is None:
            return 0.0, False
        flat = value.reshape(-1)
        return (float(flat[0]) if flat.size else 0.0), True
    return float(_attr(node, "value", 0.0)), True


def _pads_of_pad(node: Any, g: _Graph, rank: int) -> list[int] | None:
    """A Pad's pads as [begin_0 .. begin_r-1, end_0 .. end_r-1], or None if not constant."""
    if g.opset < 11 or len(node.input) < 2:
        pads = [int(p) for p in _attr(node, "paddings" if g.opset < 2 else "pads", [])]
        return pads or None
    value = g.constant(node.input[1])
    if value is None:
        return None
    pads = [int(p) for p in value.reshape(-1)]
    if len(node.input) > 3 and node.input[3]:  # opset 18: pads for the listed axes only
        axes = g.constant(node.input[3])
        if axes is None:
            return None
        full = [0] * (2 * rank)
        listed = [int(a) % rank for a in axes.reshape(-1)]
        for k, axis in enumerate(listed):
            full[axis], full[rank + axis] = pads[k], pads[len(listed) + k]
        return full
    return pads


# --- Pad ------------------------------------------------------------------------------------


def _constant_pad(node: Any, g: _Graph, k: int) -> bool:
    fill, known = _pad_fill(node, g)
    if not known or fill == 0.0:
        return False
    import numpy as np

    tag = f"zkml_pad{k}"
    # Before opset 7, Add/Sub broadcast a scalar only when told to.
    broadcast: dict[str, Any] = {"broadcast": 1} if g.opset < 7 else {}
    c = g.add_constant(f"{tag}_c", np.array(fill, dtype=np.float32))
    shifted = g.node("Sub", [node.input[0], c], f"{tag}_shifted", **broadcast)
    new_pad = _copy(node)
    new_pad.input[0] = shifted
    new_pad.output[0] = f"{tag}_padded"
    if len(new_pad.input) > 2 and new_pad.input[2]:
        new_pad.input[2] = g.add_constant(f"{tag}_zero", np.array(0.0, dtype=np.float32))
    else:
        _set_attr(new_pad, "value", 0.0)
    g.nodes.append(new_pad)
    g.node("Add", [new_pad.output[0], c], node.output[0], **broadcast)
    g.notes.append(f"Pad {node.name or node.output[0]!r} with {fill:g} → Pad(x - c, 0) + c")
    return True


def pad_source_index(length: int, begin: int, end: int, mode: str) -> np.ndarray[Any, Any]:
    """For each position of the padded axis, the input position it copies."""
    import numpy as np

    q = np.arange(-begin, length + end)
    if mode == "edge":
        return np.clip(q, 0, length - 1)
    if mode == "wrap":
        return np.mod(q, length)
    if length == 1:  # reflect of one element: numpy and onnxruntime repeat it
        return np.zeros_like(q)
    period = 2 * (length - 1)
    r = np.mod(q, period)
    return np.where(r < length, r, period - r)


def _mode_pad(node: Any, g: _Graph, k: int) -> bool:
    mode = _attr(node, "mode", b"constant").decode()
    where = _where(node)
    shape = g.shape(node.input[0], where)
    rank = len(shape)
    pads = _pads_of_pad(node, g, rank)
    if pads is None:
        raise UnsupportedModelError(
            f"{where}: {mode} padding with pads computed at run time; make the pads a constant"
        )
    x = node.input[0]
    axes = [a for a in range(rank) if pads[a] or pads[rank + a]]
    for n, axis in enumerate(axes):
        begin, end = pads[axis], pads[rank + axis]
        if mode == "reflect" and (begin >= shape[axis] or end >= shape[axis]):
            raise UnsupportedModelError(
                f"{where}: reflect padding of {max(begin, end)} on an axis of {shape[axis]}; "
                "pad by less than the axis length"
            )
        index = pad_source_index(shape[axis], begin, end, mode)
        x = g.gather(x, axis, index, f"zkml_pad{k}_{n}")
    if not axes:
        g.node("Identity", [x], node.output[0])
    else:
        g.nodes[-1].output[0] = node.output[0]
    g.notes.append(f"Pad {node.name or node.output[0]!r} mode {mode} → Gather per padded axis")
    return True


# --- Conv, ConvTranspose --------------------------------------------------------------------


def _explicit_attrs(node: Any, g: _Graph, kernel: list[int]) -> None:
    """Write out the defaults ezkl needs (it reads ``strides`` and ``pads`` as given)."""
    spatial = len(kernel)
    added = []
    defaults: dict[str, list[int]] = {"kernel_shape": kernel, "strides": [1] * spatial}
    if node.op_type in ("Conv", "ConvTranspose"):  # pools before opset 10 have no dilations
        defaults["dilations"] = [1] * spatial
    for name, value in defaults.items():
        if _attr(node, name, None) is None:
            _set_attr(node, name, value)
            added.append(name)
    if _attr(node, "pads", None) is None and _attr(node, "auto_pad", b"NOTSET") in (
        b"NOTSET",
        b"VALID",
    ):
        _drop_attr(node, "auto_pad")
        _set_attr(node, "pads", [0] * (2 * spatial))
        added.append("pads")
    if added and node.op_type != "ConvTranspose":
        g.notes.append(f"{_where(node)}: explicit default {', '.join(added)}")


def zero_dilate(weight: np.ndarray[Any, Any], dilations: list[int]) -> np.ndarray[Any, Any]:
    """A kernel [O, I, k..] with ``d - 1`` zeros between taps: a Conv with it and dilation 1
    computes the Conv with the original kernel and dilation ``d``."""
    import numpy as np

    taps = weight.shape[2:]
    shape = weight.shape[:2] + tuple((t - 1) * d + 1 for t, d in zip(taps, dilations, strict=True))
    dilated = np.zeros(shape, dtype=weight.dtype)
    dilated[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = weight
    return dilated


def _append_conv(conv: Any, g: _Graph, k: int) -> None:
    """Emit ``conv``; a bias fed at run time is added after it instead (ezkl panics on a Conv
    whose bias is not a constant: an assertion in its ``poly.rs``)."""
    import numpy as np

    if len(conv.input) < 3 or not conv.input[2] or g.constant(conv.input[2]) is not None:
        g.nodes.append(conv)
        return
    kernel = g.shape_of(conv.input[1])  # x's rank
    if kernel is None:
        g.nodes.append(conv)
        return
    where, rank = _where(conv), len(kernel)
    tag = f"zkml_convbias{k}"
    bias, output = conv.input[2], conv.output[0]
    del conv.input[2:]
    conv.output[0] = f"{tag}_conv"
    g.nodes.append(conv)
    shape = g.add_constant(f"{tag}_shape", np.array([1, -1] + [1] * (rank - 2), dtype=np.int64))
    g.node("Add", [conv.output[0], g.node("Reshape", [bias, shape], f"{tag}_b")], output)
    g.notes.append(f"{where}: bias fed at run time → added after the Conv")


def _conv(node: Any, g: _Graph, k: int) -> bool:

    weight = g.constant(node.input[1]) if len(node.input) > 1 else None
    new = _copy(node)
    if weight is None:  # a kernel fed at run time: its shape still gives the defaults
        w_shape = g.shapes.get(node.input[1]) if len(node.input) > 1 else None
        if w_shape is None or any(d <= 0 for d in w_shape):
            return False
        _explicit_attrs(new, g, list(w_shape[2:]))
        _append_conv(new, g, k)
        return True
    _explicit_attrs(new, g, list(weight.shape[2:]))
    dilations = [int(d) for d in _attr(new, "dilations", [])]
    if any(d != 1 for d in dilations):
        dilated = zero_dilate(weight, dilations)
        new.input[1] = g.add_constant(f"zkml_conv{k}_w", dilated)
        _set_attr(new, "dilations", [1] * len(dilations))
        _set_attr(new, "kernel_shape", list(dilated.shape[2:]))
        g.notes.append(f"{_where(node)}: dilations {dilations} → zero-dilated kernel")
    _append_conv(new, g, k)
    return True


def _transposed_kernel(
    node: Any, g: _Graph, groups: int, dilations: list[int], tag: str
) -> tuple[str, list[int]]:
    """ConvTranspose's kernel [Cin, Cout/g, k..] as the equivalent Conv's [Cout, Cin/g, k'..]:
    per group transposed, flipped in space, zero-dilated. Folded into a constant when the
    kernel is one; otherwise Transpose, Gathers and a 0/1 mask on the kernel fed at run time."""
    import numpy as np

    where = _where(node)
    weight = g.constant(node.input[1])
    shape = tuple(weight.shape) if weight is not None else g.shape(node.input[1], where)
    cin, cout_g, kernel = shape[0], shape[1], list(shape[2:])
    spatial = len(kernel)
    if weight is not None:
        w = weight.reshape(groups, cin // groups, cout_g, *kernel).swapaxes(1, 2)
        w = w.reshape(groups * cout_g, cin // groups, *kernel)
        w = np.ascontiguousarray(np.flip(w, axis=tuple(range(2, 2 + spatial))))
        w = zero_dilate(w, dilations)
        return g.add_constant(f"{tag}_w", w), list(w.shape[2:])
    w_name = node.input[1]
    if groups == 1:
        w_name = g.node("Transpose", [w_name], f"{tag}_wt", perm=[1, 0, *range(2, 2 + spatial)])
    else:
        split = np.array([groups, cin // groups, cout_g, *kernel], dtype=np.int64)
        merged = np.array([groups * cout_g, cin // groups, *kernel], dtype=np.int64)
        w_name = g.node("Reshape", [w_name, g.add_constant(f"{tag}_ws", split)], f"{tag}_wg")
        w_name = g.node("Transpose", [w_name], f"{tag}_wgt", perm=[0, 2, 1, *range(3, 3 + spatial)])
        w_name = g.node("Reshape", [w_name, g.add_constant(f"{tag}_wm", merged)], f"{tag}_wt")
    mask_shape = [groups * cout_g, cin // groups]
    masks = []
    for a, (t, d) in enumerate(zip(kernel, dilations, strict=True)):
        j = np.arange((t - 1) * d + 1)
        real = j % d == 0
        index = np.where(real, t - 1 - j // d, 0)  # flipped, with zeros between the taps
        w_name = g.gather(w_name, 2 + a, index, f"{tag}_wf{a}")
        mask_shape.append(len(j))
        masks.append(real.astype(np.float32))
    if any(d != 1 for d in dilations):
        w_name = g.node(
            "Mul", [w_name, g.add_constant(f"{tag}_wmask", _outer(mask_shape, masks))], f"{tag}_wd"
        )
    return w_name, mask_shape[2:]


def _outer(shape: list[int], masks: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """A 0/1 tensor of ``shape`` that is 1 where every spatial axis' mask is 1."""
    import numpy as np

    spatial = len(masks)
    full = np.ones(shape, dtype=np.float32)
    for a, m in enumerate(masks):
        full = full * m.reshape([-1] + [1] * (spatial - 1 - a))
    return full


def _transpose_pads(
    node: Any, x_shape: tuple[int, ...], kernel: list[int], spatial: int
) -> list[int]:
    """ConvTranspose's begin and end pads, computed from ``output_shape`` / ``auto_pad`` as
    onnxruntime does when they are given instead of ``pads``."""
    strides = [int(s) for s in _attr(node, "strides", [1] * spatial)]
    dilations = [int(d) for d in _attr(node, "dilations", [1] * spatial)]
    extra = [int(p) for p in _attr(node, "output_padding", [0] * spatial)]
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    output_shape = [int(o) for o in _attr(node, "output_shape", [])]
    pads = [int(p) for p in _attr(node, "pads", [0] * (2 * spatial))]
    if not output_shape and auto_pad not in (b"SAME_UPPER", b"SAME_LOWER"):
        return pads
    begin, end = [], []
    for a in range(spatial):
        length, s = x_shape[2 + a], strides[a]
        target = output_shape[-spatial + a] if output_shape else length * s
        full = s * (length - 1) + extra[a] + (kernel[a] - 1) * dilations[a] + 1
        # As onnxruntime: padding is never negative; an output_shape past the transposed
        # extent gets zeros (plus bias) at the end, auto_pad stops at the extent.
        total = max(0, full - target)
        small, big = total // 2, total - total // 2
        head = small if auto_pad == b"SAME_UPPER" else big
        tail = full - target - head if output_shape else total - head
        begin.append(head)
        end.append(tail)
    return begin + end


class _Phase(NamedTuple):
    """One output phase of a strided ConvTranspose along one axis."""

    outs: list[int]  # the output positions in this phase
    taps: list[int]  # the kernel taps that reach them, by increasing input offset
    step: int  # input positions between consecutive taps
    reads: list[int]  # the input positions the phase's Conv reads; -1: outside (a zero)


def _polyphase(
    node: Any, g: _Graph, k: int, x_shape: tuple[int, ...], pads: list[int], out: list[int]
) -> bool:
    """A strided ConvTranspose with constant weights as one small Conv per output phase: the
    outputs ``o`` with the same ``(o + pad) mod stride`` take the same taps, so each phase is
    a plain Conv of the input with those taps (no multiplications by interleaved zeros,
    ``stride``-fold fewer rows); the phases are then put back in order by one Gather."""
    import numpy as np

    weight = g.constant(node.input[1])
    bias = g.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if weight is None or (len(node.input) > 2 and node.input[2] and bias is None):
        return False
    if g.opset < 5:  # Reshape takes its shape as an input from opset 5
        return False
    spatial = len(x_shape) - 2
    groups = int(_attr(node, "group", 1))
    strides = [int(s) for s in _attr(node, "strides", [1] * spatial)]
    dilations = [int(d) for d in _attr(node, "dilations", [1] * spatial)]
    cin, cout_g, taps = weight.shape[0], weight.shape[1], list(weight.shape[2:])
    conv_w = weight.reshape(groups, cin // groups, cout_g, *taps).swapaxes(1, 2)
    conv_w = conv_w.reshape(groups * cout_g, cin // groups, *taps)
    n, cout = x_shape[0], groups * cout_g
    tag = f"zkml_convt{k}"
    phases: list[list[_Phase]] = []
    for a in range(spatial):
        length, s, d, t, p = x_shape[2 + a], strides[a], dilations[a], taps[a], pads[a]
        per_axis: list[_Phase] = []
        for c in range(s):
            outs = [o for o in range(out[a]) if (o + p) % s == c]
            js = [j for j in range(t) if (j * d - c) % s == 0][::-1]  # increasing offset
            if not outs or not js:
                per_axis.append(_Phase(outs, js, 1, []))
                continue
            offsets = [(c - j * d) // s for j in js]
            step = offsets[1] - offsets[0] if len(js) > 1 else 1
            first = (outs[0] + p - c) // s + offsets[0]
            span = len(outs) + (len(js) - 1) * step
            reads = [q if 0 <= q < length else -1 for q in range(first, first + span)]
            per_axis.append(_Phase(outs, js, step, reads))
        phases.append(per_axis)
    blocks: list[str] = []
    where_in_concat: dict[tuple[int, ...], int] = {}
    position = 0
    for combo in itertools.product(*(range(len(ph)) for ph in phases)):
        parts = [phases[a][c] for a, c in enumerate(combo)]
        count = prod(len(part.outs) for part in parts)
        if not count:
            continue
        for flat, o in enumerate(itertools.product(*(part.outs for part in parts))):
            where_in_concat[o] = position + flat
        position += count
        name = f"{tag}_p{'_'.join(map(str, combo))}"
        if any(not part.taps for part in parts):  # no tap reaches these outputs: zero (+ bias)
            zeros = np.zeros([n, cout, count], dtype=np.float32)
            blocks.append(g.add_constant(f"{name}_zero", zeros))
            continue
        x = node.input[0]
        mask = np.ones([1, 1, *(len(part.reads) for part in parts)], dtype=np.float32)
        for a, part in enumerate(parts):
            index = np.array(part.reads)
            x = g.gather(x, 2 + a, np.where(index < 0, 0, index), f"{name}_{a}")
            mask = mask * (index >= 0).astype(np.float32).reshape([-1] + [1] * (spatial - 1 - a))
        if not mask.all():
            x = g.node("Mul", [x, g.add_constant(f"{name}_mask", mask)], f"{name}_masked")
        sub = conv_w[np.ix_(range(cout), range(cin // groups), *(part.taps for part in parts))]
        sub = zero_dilate(np.ascontiguousarray(sub), [part.step for part in parts])
        y = g.node(
            "Conv",
            [x, g.add_constant(f"{name}_w", sub)],
            f"{name}_conv",
            kernel_shape=list(sub.shape[2:]),
            strides=[1] * spatial,
            dilations=[1] * spatial,
            pads=[0] * (2 * spatial),
            group=groups,
        )
        flat_shape = g.add_constant(f"{name}_flat", np.array([n, cout, count], dtype=np.int64))
        blocks.append(g.node("Reshape", [y, flat_shape], f"{name}_flat_out"))
    joined = g.node("Concat", blocks, f"{tag}_phases", axis=2) if len(blocks) > 1 else blocks[0]
    order = [where_in_concat[o] for o in itertools.product(*(range(size) for size in out))]
    ordered = g.gather(joined, 2, np.array(order), f"{tag}_order")
    full = g.add_constant(f"{tag}_shape", np.array([n, cout, *out], dtype=np.int64))
    result = node.output[0] if bias is None else f"{tag}_nobias"
    g.node("Reshape", [ordered, full], result)
    if bias is not None:
        b = np.broadcast_to(bias.reshape([-1] + [1] * spatial), [cout, *out])
        broadcast: dict[str, Any] = {"broadcast": 1} if g.opset < 7 else {}
        b_name = g.add_constant(f"{tag}_bias", np.ascontiguousarray(b, dtype=np.float32))
        g.node("Add", [result, b_name], node.output[0], **broadcast)
    g.notes.append(f"{_where(node)} → one Conv per output phase of its strides, reordered")
    return True


def _conv_transpose(node: Any, g: _Graph, k: int) -> bool:
    import numpy as np

    where = _where(node)
    x_shape = g.shape(node.input[0], where)
    spatial = len(x_shape) - 2
    groups = int(_attr(node, "group", 1))
    strides = [int(s) for s in _attr(node, "strides", [1] * spatial)]
    dilations = [int(d) for d in _attr(node, "dilations", [1] * spatial)]
    extra = [int(p) for p in _attr(node, "output_padding", [0] * spatial)]
    tag = f"zkml_convt{k}"
    weight = g.constant(node.input[1])
    if weight is not None and any(s > 1 for s in strides):
        taps = [int(t) for t in weight.shape[2:]]
        pads = _transpose_pads(node, x_shape, taps, spatial)
        sizes = [
            strides[a] * (x_shape[2 + a] - 1)
            + extra[a]
            + (taps[a] - 1) * dilations[a]
            + 1
            - pads[a]
            - pads[spatial + a]
            for a in range(spatial)
        ]
        if _polyphase(node, g, k, x_shape, pads, sizes):
            return True
    w_name, dilated = _transposed_kernel(node, g, groups, dilations, tag)
    kernel = [(t - 1) // d + 1 for t, d in zip(dilated, dilations, strict=True)]
    pads = _transpose_pads(node, x_shape, kernel, spatial)
    x = node.input[0]
    mask_shape = list(x_shape)
    masks = []
    for a in range(spatial):
        length, s, span = x_shape[2 + a], strides[a], dilated[a]
        out = s * (length - 1) + extra[a] + span - pads[a] - pads[spatial + a]
        lead = span - 1 - pads[a]
        q = np.arange(out + span - 1) - lead
        real = (q % s == 0) & (q >= 0) & (q // s < length)
        x = g.gather(x, 2 + a, np.where(real, q // s, 0), f"{tag}_{a}")
        mask_shape[2 + a] = len(q)
        masks.append(real.astype(np.float32))
    mask = g.add_constant(f"{tag}_mask", _outer(mask_shape, masks))
    zeros_between = g.node("Mul", [x, mask], f"{tag}_interleaved")
    inputs = [zeros_between, w_name]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(node.input[2])
    g.node(
        "Conv",
        inputs,
        node.output[0],
        kernel_shape=dilated,
        strides=[1] * spatial,
        dilations=[1] * spatial,
        pads=[0] * (2 * spatial),
        group=groups,
    )
    g.notes.append(f"{where} → Conv over the zero-interleaved, padded input")
    return True


# --- PRelu ----------------------------------------------------------------------------------


def _prelu(node: Any, g: _Graph, k: int) -> bool:
    import numpy as np

    slope = g.constant(node.input[1])
    if slope is None or slope.size == 1:
        return False  # one shared slope: ezkl proves PRelu as it is
    where = _where(node)
    shape = g.shape(node.input[0], where)
    channel = slope.ndim == 1 and len(shape) > 2 and slope.size == shape[1]
    if channel and (g.opset < 7 or slope.size != shape[-1]):
        # PRelu-6 and old PyTorch exports: one slope per channel (axis 1).
        slope = slope.reshape([-1] + [1] * (len(shape) - 2))
    try:
        full = np.ascontiguousarray(np.broadcast_to(slope, shape)).astype(np.float32)
    except ValueError:
        raise UnsupportedModelError(
            f"{where}: slope of shape {list(slope.shape)} does not broadcast to {list(shape)}"
        ) from None
    tag = f"zkml_prelu{k}"
    x = node.input[0]
    positive = g.node("Relu", [x], f"{tag}_relu")
    negative = g.node("Sub", [x, positive], f"{tag}_neg")
    scaled = g.node("Mul", [negative, g.add_constant(f"{tag}_slope", full)], f"{tag}_scaled")
    g.node("Add", [positive, scaled], node.output[0])
    g.notes.append(f"{where}: {slope.size} slopes → relu(x) + slope * (x - relu(x))")
    return True


# --- BatchNormalization ---------------------------------------------------------------------


def _batch_norm(node: Any, g: _Graph, k: int) -> bool:
    """Inference-mode BatchNormalization whose statistics are fed at run time (tract folds
    only constant ones): ``(x - mean) * reciprocal(sqrt(var + eps)) * scale + bias``."""
    import numpy as np

    if int(_attr(node, "training_mode", 0)) and g.opset >= 14:
        return _batch_norm_training(node, g, k)
    if (len(node.output) > 1 and any(node.output[1:])) or int(_attr(node, "training_mode", 0)):
        return False  # the old forms' statistics outputs: left to ezkl
    params = list(node.input[1:5])
    if len(params) != 4 or all(g.constant(p) is not None for p in params) or g.opset < 7:
        return False
    where = _where(node)
    rank = len(g.shape(node.input[0], where))
    tag = f"zkml_bn{k}"
    shape = g.add_constant(f"{tag}_shape", np.array([-1] + [1] * (rank - 2), dtype=np.int64))
    scale, bias, mean, var = (
        g.node("Reshape", [p, shape], f"{tag}_{n}")
        for n, p in zip(("scale", "bias", "mean", "var"), params, strict=True)
    )
    eps = g.add_constant(f"{tag}_eps", np.array(float(_attr(node, "epsilon", 1e-5)), np.float32))
    root = g.node("Sqrt", [g.node("Add", [var, eps], f"{tag}_vareps")], f"{tag}_std")
    inverse = g.node("Reciprocal", [root], f"{tag}_inv")
    centred = g.node("Sub", [node.input[0], mean], f"{tag}_centred")
    normed = g.node("Mul", [centred, inverse], f"{tag}_normed")
    g.node("Add", [g.node("Mul", [normed, scale], f"{tag}_scaled"), bias], node.output[0])
    g.notes.append(f"{where}: statistics fed at run time → (x - mean) / sqrt(var + eps) form")
    return True


def _batch_norm_training(node: Any, g: _Graph, k: int) -> bool:
    """Training-mode BatchNormalization (opset 14+): normalised by the batch's own statistics,
    ``mean`` and the biased ``var`` over every axis but the channel; the optional outputs are
    the running statistics ``input * momentum + batch * (1 - momentum)``."""
    import numpy as np

    where = _where(node)
    rank = len(g.shape(node.input[0], where))
    axes = [a for a in range(rank) if a != 1]
    tag = f"zkml_bntrain{k}"
    x, scale, bias, mean_in, var_in = node.input[:5]
    shape = g.add_constant(f"{tag}_shape", np.array([-1] + [1] * (rank - 2), dtype=np.int64))
    mean = _reduce(g, "ReduceMean", x, axes, f"{tag}_mean")
    centred = g.node("Sub", [x, mean], f"{tag}_centred")
    var = _reduce(
        g, "ReduceMean", g.node("Mul", [centred, centred], f"{tag}_sq"), axes, f"{tag}_var"
    )
    eps = _scalar(g, float(_attr(node, "epsilon", 1e-5)), f"{tag}_eps")
    root = g.node("Sqrt", [g.node("Add", [var, eps], f"{tag}_vareps")], f"{tag}_std")
    normed = g.node("Div", [centred, root], f"{tag}_normed")
    scaled = g.node("Mul", [normed, g.node("Reshape", [scale, shape], f"{tag}_s")], f"{tag}_sc")
    g.node("Add", [scaled, g.node("Reshape", [bias, shape], f"{tag}_b")], node.output[0])
    momentum = float(_attr(node, "momentum", 0.9))
    flat = g.add_constant(f"{tag}_flat", np.array([-1], dtype=np.int64))
    for i, (batch, running) in enumerate(((mean, mean_in), (var, var_in)), start=1):
        if len(node.output) <= i or not node.output[i]:
            continue
        kept = g.node("Mul", [running, _scalar(g, momentum, f"{tag}_m{i}")], f"{tag}_kept{i}")
        fresh = g.node("Reshape", [batch, flat], f"{tag}_batch{i}")
        new = g.node("Mul", [fresh, _scalar(g, 1.0 - momentum, f"{tag}_n{i}")], f"{tag}_new{i}")
        g.node("Add", [kept, new], node.output[i])
    g.notes.append(f"{where}: training mode → normalised by the batch's mean and variance")
    return True


# --- Resize, Upsample ------------------------------------------------------------------------


def _single_node_model(node: Any, g: _Graph, x_shape: tuple[int, ...]) -> Any | None:
    """``node`` alone as a model with a float input of ``x_shape`` and its other inputs the
    model's constants; None if one of them is not constant."""
    import onnx
    from onnx import helper, numpy_helper

    inits = []
    for name in node.input[1:]:
        if not name:
            continue
        value = g.constant(name)
        if value is None:
            return None
        inits.append(numpy_helper.from_array(value, name))
    graph = helper.make_graph(
        [node],
        "single",
        [helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=g.model.opset_import)


def _node_runner(
    node: Any, g: _Graph, x_shape: tuple[int, ...]
) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None:
    """``node`` alone under onnxruntime, on a float input of ``x_shape`` (its other inputs
    the model's constants); None if one of them is not constant or onnxruntime refuses it."""
    import numpy as np
    import onnxruntime as ort

    model = _single_node_model(node, g, x_shape)
    if model is None:
        return None
    model.ir_version = min(g.model.ir_version, 8) if g.model.ir_version >= 4 else 8
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
    except Exception:
        return None

    def run(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        out: np.ndarray[Any, Any] = session.run(None, {node.input[0]: x})[0]
        return np.asarray(out)

    return run


def _check_reference(
    node: Any, g: _Graph, x_shape: tuple[int, ...], run: Callable[[Any], Any], what: str
) -> None:
    """Refuse a node on which onnxruntime (which the fidelity check trusts) and the ONNX
    reference implementation disagree: a proof would certify one of two answers."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    model = _single_node_model(node, g, x_shape)
    if model is None:
        return  # a parameter fed at run time: _node_runner refused it already
    probe = np.random.default_rng(1).normal(size=x_shape).astype(np.float32)
    try:
        evaluator: Any = ReferenceEvaluator(model)
        expected = np.asarray(evaluator.run(None, {node.input[0]: probe})[0])
    except Exception:
        return  # the reference cannot run it: onnxruntime alone decides, as everywhere
    got = run(probe)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-3):
        raise UnsupportedModelError(
            f"{_where(node)}: onnxruntime and the ONNX reference implementation disagree on "
            f"this {what}, so a proof would certify one of two answers; {_DISAGREE_FIX[what]}"
        )


_DISAGREE_FIX = {
    "Resize": "use another coordinate_transformation_mode (e.g. half_pixel)",
    "DFT": "compute the transform with a MatMul by its constant matrix in the model",
    "GridSample": "use another mode or padding_mode",
    "DeformConv": "use a plain Conv, or sample the input with a GridSample first",
    "AveragePool": "export it with explicit pads and ceil_mode 0",
}


def _resize_matrices(node: Any, g: _Graph, x_shape: tuple[int, ...]) -> list[Any] | None:
    """Per axis, the [in, out] matrix the resize applies along it, read off onnxruntime running
    the node itself: a one-hot slice along the axis, constant along the others (every mode
    keeps a constant constant), gives one row. None if a parameter is not constant."""
    import numpy as np

    run = _node_runner(node, g, x_shape)
    if run is None:
        return None
    _check_reference(node, g, x_shape, run, "Resize")
    matrices = []
    for a, length in enumerate(x_shape):
        rows = []
        for i in range(length):
            basis = np.zeros(x_shape, dtype=np.float32)
            np.moveaxis(basis, a, 0)[i] = 1.0
            out = run(basis)
            rows.append(out[tuple(0 if b != a else slice(None) for b in range(len(x_shape)))])
        matrices.append(np.stack(rows).astype(np.float32))
    # The composition of the per-axis maps must be the operator itself (separable modes).
    probe = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    composed = probe
    for a, m in enumerate(matrices):
        composed = np.moveaxis(np.moveaxis(composed, a, -1) @ m, -1, a)
    if composed.shape != run(probe).shape or not np.allclose(composed, run(probe), atol=1e-4):
        return None
    return matrices


def _resize(node: Any, g: _Graph, k: int) -> bool:
    """A Resize / Upsample with constant scales or sizes is linear and separable: per axis, a
    Gather (nearest: each output copies one input) or a MatMul with a constant matrix (linear,
    cubic: fixed weights), the matrices read off onnxruntime running the node itself."""
    import numpy as np

    where = _where(node)
    x_shape = g.shape(node.input[0], where)
    matrices = _resize_matrices(node, g, x_shape)
    if matrices is None:
        return False
    tag = f"zkml_resize{k}"
    x = node.input[0]
    rank = len(x_shape)
    for a, m in enumerate(matrices):
        if m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(m.shape[0])):
            continue
        if np.all((m == 0) | (m == 1)) and np.all(m.sum(axis=0) == 1):
            x = g.gather(x, a, m.argmax(axis=0), f"{tag}_{a}")
            continue
        perm = list(range(rank))
        perm[a], perm[-1] = perm[-1], perm[a]
        moved = g.node("Transpose", [x], f"{tag}_{a}_t", perm=perm)
        mixed = g.node("MatMul", [moved, g.add_constant(f"{tag}_{a}_m", m)], f"{tag}_{a}_mm")
        x = g.node("Transpose", [mixed], f"{tag}_{a}_out", perm=perm)
    g.node("Identity", [x], node.output[0])
    mode = _attr(node, "mode", b"nearest").decode()
    g.notes.append(f"{where}: mode {mode} → a Gather or constant MatMul per resized axis")
    return True


# --- LpNormalization, LpPool, RMSNormalization, Pow, DFT ------------------------------------


def _reduce(g: _Graph, op: str, x: str, axes: list[int], output: str) -> str:
    """``op`` (ReduceSum / ReduceMean) over ``axes``, keeping them: the axes an attribute
    before the opset that made them an input (13 for ReduceSum, 18 for the others)."""
    import numpy as np

    if g.opset >= (13 if op == "ReduceSum" else 18):
        axes_name = g.add_constant(f"{output}_axes", np.array(axes, dtype=np.int64))
        return g.node(op, [x, axes_name], output, keepdims=1)
    return g.node(op, [x], output, axes=axes, keepdims=1)


def _scalar(g: _Graph, value: float, name: str) -> str:
    import numpy as np

    return g.add_constant(name, np.array(value, dtype=np.float32))


def _power(g: _Graph, x: str, p: int, tag: str) -> str:
    """``|x| ** p`` for an integer ``p >= 1``: Abs for 1, x * x for 2, a scalar Pow for 3, and
    from 4 on Muls by repeated squaring ((x * x) * (x * x) for 4). ezkl's Pow multiplies all
    p factors before it rescales, at p times the scale: at p = 4 past its range checks
    (LpPool's node tests refused at calibration), where each Mul rescales at once; at p = 3
    it fits and costs fewer rows than two Muls (``lppool_2d_pads``: 156 s as a Pow, past
    300 s as Muls)."""
    base = g.node("Abs", [x], f"{tag}_abs") if p % 2 else x
    if p == 3:
        return g.node("Pow", [base, _scalar(g, float(p), f"{tag}_p")], f"{tag}_pow")
    result, square, step = "", base, 0
    while True:  # binary exponentiation: result *= square for each set bit of p
        if p & 1:
            result = square if not result else g.node("Mul", [result, square], f"{tag}_m{step}")
        p >>= 1
        if not p:
            return result
        square = g.node("Mul", [square, square], f"{tag}_sq{step or ''}")
        step += 1


def _root(g: _Graph, x: str, p: int, output: str, tag: str) -> str:
    """``x ** (1 / p)``: nothing for 1, Sqrt for 2, else Pow with the exponent 1 / p."""
    if p == 1:
        return g.node("Identity", [x], output)
    if p == 2:
        return g.node("Sqrt", [x], output)
    return g.node("Pow", [x, _scalar(g, 1.0 / p, f"{tag}_inv_p")], output)


def _lp_normalization(node: Any, g: _Graph, k: int) -> bool:
    """``x / ReduceSum(|x|)`` (p = 1) or ``x / sqrt(ReduceSum(x * x))`` (p = 2) along the axis."""
    p = int(_attr(node, "p", 2))
    if g.opset < 7 or p not in (1, 2):  # multidirectional broadcasting from opset 7
        return False
    where = _where(node)
    rank = len(g.shape(node.input[0], where))
    axis = int(_attr(node, "axis", -1)) % rank
    tag = f"zkml_lpnorm{k}"
    total = _reduce(g, "ReduceSum", _power(g, node.input[0], p, tag), [axis], f"{tag}_sum")
    norm = total if p == 1 else g.node("Sqrt", [total], f"{tag}_norm")
    # A zero norm means x is all zeros there: divide by 1 (onnxruntime returns 0, not NaN).
    unused = g.node(
        "Sub", [_scalar(g, 1.0, f"{tag}_one"), g.node("Sign", [norm], f"{tag}_sign")], f"{tag}_zero"
    )
    safe = g.node("Add", [norm, unused], f"{tag}_safe")
    g.node("Div", [node.input[0], safe], node.output[0])
    g.notes.append(f"{where}: p {p} → x / ReduceSum{'(|x|)' if p == 1 else ' of squares, Sqrt'}")
    return True


def _same_pads(
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    auto_pad: bytes,
) -> list[int]:
    """Begin pads of an ``auto_pad`` SAME_UPPER / SAME_LOWER pool, as onnxruntime puts them."""
    begin = []
    for a in range(len(kernel)):
        span = (kernel[a] - 1) * dilations[a] + 1
        total = max(0, (y_shape[2 + a] - 1) * strides[a] + span - x_shape[2 + a])
        small, big = total // 2, total - total // 2
        begin.append(small if auto_pad == b"SAME_UPPER" else big)
    return begin


class _Windows(NamedTuple):
    """Where a pool's windows sit: per spatial axis the output size and the leading padding."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    out: list[int]
    begin: list[int]


def _windows(node: Any, g: _Graph) -> _Windows | None:
    """The windows of a pool node as onnxruntime places them; None where they are not the
    spec's (SAME auto_pad with windows that skip input: onnxruntime then reads elsewhere)."""
    where = _where(node)
    kernel = [int(t) for t in _attr(node, "kernel_shape", [])]
    if not kernel:
        return None
    spatial = len(kernel)
    x_shape = g.shape(node.input[0], where)
    strides = [int(s) for s in _attr(node, "strides", [1] * spatial)]
    dilations = [int(d) for d in _attr(node, "dilations", [1] * spatial)]
    pads = [int(q) for q in _attr(node, "pads", [0] * (2 * spatial))]
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    ceil = int(_attr(node, "ceil_mode", 0))
    out = _pool_out(x_shape[2:], kernel, strides, dilations, pads, ceil, auto_pad)
    if auto_pad == b"VALID":
        begin = [0] * spatial
    elif auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
        spans = [(t - 1) * d + 1 for t, d in zip(kernel, dilations, strict=True)]
        if any((out[a] - 1) * strides[a] + spans[a] < x_shape[2 + a] for a in range(spatial)):
            return None
        y_shape = (*x_shape[:2], *out)
        begin = _same_pads(x_shape, y_shape, kernel, strides, dilations, auto_pad)
    else:
        begin = pads[:spatial]
    return _Windows(kernel, strides, dilations, out, begin)


def _window_sums(g: _Graph, x: str, x_shape: tuple[int, ...], w: _Windows, tag: str) -> str:
    """Per channel, the sum of each window of ``x``: a depthwise Conv with a kernel of ones
    (zero-dilated for dilations; padding adds zeros)."""
    import numpy as np

    spatial = len(w.kernel)
    # End pads that give exactly ``out`` windows (ceil mode: the last one runs into zeros).
    end = [
        max(
            0,
            (w.out[a] - 1) * w.strides[a]
            + (w.kernel[a] - 1) * w.dilations[a]
            + 1
            - x_shape[2 + a]
            - w.begin[a],
        )
        for a in range(spatial)
    ]
    channels = x_shape[1]
    ones = zero_dilate(np.ones([channels, 1, *w.kernel], dtype=np.float32), w.dilations)
    return g.node(
        "Conv",
        [x, g.add_constant(f"{tag}_ones", ones)],
        f"{tag}_sum",
        kernel_shape=list(ones.shape[2:]),
        strides=w.strides,
        dilations=[1] * spatial,
        pads=w.begin + end,
        group=channels,
    )


def _window_members(length: int, w: _Windows, a: int) -> np.ndarray[Any, Any]:
    """[length, out] 0/1: input position i is a tap of output o's window along axis ``a``."""
    import numpy as np

    members = np.zeros((length, w.out[a]), dtype=np.float32)
    for o in range(w.out[a]):
        taps = o * w.strides[a] - w.begin[a] + np.arange(w.kernel[a]) * w.dilations[a]
        members[taps[(taps >= 0) & (taps < length)], o] = 1.0
    return members


def _lp_pool(node: Any, g: _Graph, k: int) -> bool:
    """``(sum over the window of |x| ** p) ** (1 / p)``: the window sums are a depthwise Conv
    with a kernel of ones (zero-dilated for dilations; padding adds zeros, as in LpPool)."""
    where = _where(node)
    p = _attr(node, "p", 2)
    w = _windows(node, g)
    if w is None or float(p) != int(p) or int(p) < 1:
        return False
    p = int(p)
    tag = f"zkml_lppool{k}"
    x_shape = g.shape(node.input[0], where)
    sums = _window_sums(g, _power(g, node.input[0], p, tag), x_shape, w, tag)
    _root(g, sums, p, node.output[0], tag)
    g.notes.append(f"{where}: p {p} → depthwise Conv of ones over |x|^{p}, then the p-th root")
    return True


def _average_pool(node: Any, g: _Graph, k: int) -> bool:
    """A padded, ceil-mode, dilated or auto-padded AveragePool: the window sums (a depthwise
    Conv of ones) times a constant per-position factor, 1 / the window's divisor. ezkl divides
    every window by the kernel's size, which is wrong wherever a window reads padding with
    ``count_include_pad`` 0 (the default) or runs past the padding in ceil mode. The divisor
    is read off onnxruntime (its average of ones over the count of real taps) and the whole
    form checked against it on a random probe."""
    import numpy as np

    where = _where(node)
    kernel = [int(t) for t in _attr(node, "kernel_shape", [])]
    spatial = len(kernel)
    plain = (
        not any(int(q) for q in _attr(node, "pads", []))
        and all(int(d) == 1 for d in _attr(node, "dilations", [1] * spatial))
        and not int(_attr(node, "ceil_mode", 0))
        and _attr(node, "auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
    )
    if plain:
        return False  # every window full: ezkl's average is the right one
    w = _windows(node, g)
    x_shape = g.shape(node.input[0], where)
    run = _node_runner(node, g, x_shape)
    if w is None or run is None:
        return False
    members = [_window_members(x_shape[2 + a], w, a) for a in range(spatial)]
    counts = np.ones([1, 1], dtype=np.float32)
    for m in members:  # taps inside the input, per output position (an outer product)
        counts = np.multiply.outer(counts, m.sum(axis=0))
    counts = counts.reshape(1, 1, *w.out)
    averages = run(np.ones(x_shape, dtype=np.float32))[:1, :1]
    if averages.shape != counts.shape or not np.all(np.isfinite(averages)):
        return False  # a window of padding only (0 / 0): left to ezkl and the fidelity check
    factor = np.where(counts > 0, averages / np.maximum(counts, 1), 0).astype(np.float32)
    probe = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    sums = probe
    for a, m in enumerate(members):
        sums = np.moveaxis(np.moveaxis(sums, 2 + a, -1) @ m, -1, 2 + a)
    if not np.allclose(sums * factor, run(probe), atol=1e-4):
        return False
    _check_reference(node, g, x_shape, run, "AveragePool")
    tag = f"zkml_avgpool{k}"
    total = _window_sums(g, node.input[0], x_shape, w, tag)
    g.node("Mul", [total, g.add_constant(f"{tag}_factor", factor)], node.output[0])
    g.notes.append(f"{where}: window sums by a depthwise Conv of ones × 1 / each window's divisor")
    return True


def _rms_normalization(node: Any, g: _Graph, k: int) -> bool:
    """``x / sqrt(ReduceMean(x * x) + epsilon) * scale`` over the axes from ``axis`` on."""
    where = _where(node)
    rank = len(g.shape(node.input[0], where))
    axis = int(_attr(node, "axis", -1)) % rank
    eps = float(_attr(node, "epsilon", 1e-5))
    tag = f"zkml_rmsnorm{k}"
    x = node.input[0]
    mean = _reduce(
        g, "ReduceMean", g.node("Mul", [x, x], f"{tag}_sq"), list(range(axis, rank)), f"{tag}_mean"
    )
    shifted = g.node("Add", [mean, _scalar(g, eps, f"{tag}_eps")], f"{tag}_shifted")
    normed = g.node("Div", [x, g.node("Sqrt", [shifted], f"{tag}_rms")], f"{tag}_normed")
    g.node("Mul", [normed, node.input[1]], node.output[0])
    g.notes.append(f"{where}: axis {axis} → x / sqrt(ReduceMean(x * x) + epsilon) * scale")
    return True


def _instance_normalization(node: Any, g: _Graph, k: int) -> bool:
    """``(x - mean) / sqrt(var + epsilon) * scale + bias`` per sample and channel, the mean
    and variance over the spatial axes (ezkl's own InstanceNormalization is off by up to 0.5
    on onnx's test case; this is the form its LayerNormalization proofs take)."""
    import numpy as np

    if g.opset < 7:
        return False
    where = _where(node)
    shape = g.shape(node.input[0], where)
    rank = len(shape)
    axes = list(range(2, rank))
    if not axes:
        return False
    eps = float(_attr(node, "epsilon", 1e-5))
    tag = f"zkml_instnorm{k}"
    x = node.input[0]
    per_channel = g.add_constant(f"{tag}_cshape", np.array([shape[1]] + [1] * (rank - 2)))
    scale = g.node("Reshape", [node.input[1], per_channel], f"{tag}_scale")
    bias = g.node("Reshape", [node.input[2], per_channel], f"{tag}_bias")
    mean = _reduce(g, "ReduceMean", x, axes, f"{tag}_mean")
    centred = g.node("Sub", [x, mean], f"{tag}_centred")
    var = _reduce(
        g, "ReduceMean", g.node("Mul", [centred, centred], f"{tag}_sq"), axes, f"{tag}_var"
    )
    shifted = g.node("Add", [var, _scalar(g, eps, f"{tag}_eps")], f"{tag}_shifted")
    normed = g.node("Div", [centred, g.node("Sqrt", [shifted], f"{tag}_std")], f"{tag}_normed")
    g.node("Add", [g.node("Mul", [normed, scale], f"{tag}_scaled"), bias], node.output[0])
    g.notes.append(f"{where} → (x - mean) / sqrt(var + epsilon) * scale + bias")
    return True


def _lrn(node: Any, g: _Graph, k: int) -> bool:
    """``x / (bias + alpha / size * window sum of x * x over channels) ** beta``: the window
    sums are one MatMul with a constant 0/1 band matrix over the channel axis."""
    import numpy as np

    if g.opset < 7:
        return False
    where = _where(node)
    shape = g.shape(node.input[0], where)
    rank, channels = len(shape), shape[1]
    size = int(_attr(node, "size", 1))
    alpha = float(_attr(node, "alpha", 1e-4))
    beta = float(_attr(node, "beta", 0.75))
    bias = float(_attr(node, "bias", 1.0))
    i, c = np.arange(channels)[:, None], np.arange(channels)[None, :]
    band = ((i >= c - (size - 1) // 2) & (i <= c + size // 2)).astype(np.float32)
    tag = f"zkml_lrn{k}"
    x = node.input[0]
    last = [0, *range(2, rank), 1]
    moved = g.node("Transpose", [g.node("Mul", [x, x], f"{tag}_sq")], f"{tag}_t", perm=last)
    sums = g.node("MatMul", [moved, g.add_constant(f"{tag}_band", band)], f"{tag}_sum")
    back = g.node("Transpose", [sums], f"{tag}_back", perm=[int(a) for a in np.argsort(last)])
    scaled = g.node("Mul", [back, _scalar(g, alpha / size, f"{tag}_alpha")], f"{tag}_scaled")
    base = g.node("Add", [scaled, _scalar(g, bias, f"{tag}_bias")], f"{tag}_base")
    power = g.node("Pow", [base, _scalar(g, beta, f"{tag}_beta")], f"{tag}_pow")
    g.node("Div", [x, power], node.output[0])
    g.notes.append(f"{where}: size {size} → a constant band MatMul over channels, Pow, Div")
    return True


#: Det of an n x n matrix has n! terms: past this n the Leibniz form is too large.
MAX_DET_SIZE = 5


def _det(node: Any, g: _Graph, k: int) -> bool:
    """The Leibniz formula: ``sum over permutations s of sign(s) * prod_i x[i, s(i)]``, one
    Gather per row collecting that row's factor of every term, their product, a signed sum."""
    import numpy as np

    where = _where(node)
    shape = g.shape(node.input[0], where)
    n = shape[-1]
    if g.opset < 13 or len(shape) < 2 or shape[-2] != n:  # ReduceSum takes axes as an input
        return False
    if n > MAX_DET_SIZE:
        raise UnsupportedModelError(
            f"{where}: the determinant of a {n} x {n} matrix has {prod(range(1, n + 1)):,} "
            f"terms; keep matrices at most {MAX_DET_SIZE} x {MAX_DET_SIZE}"
        )
    perms = list(itertools.permutations(range(n)))
    signs = np.array(
        [(-1) ** sum(p[a] > p[b] for a in range(n) for b in range(a + 1, n)) for p in perms],
        dtype=np.float32,
    )
    tag = f"zkml_det{k}"
    flat_shape = g.add_constant(f"{tag}_flat", np.array([*shape[:-2], n * n], dtype=np.int64))
    flat = g.node("Reshape", [node.input[0], flat_shape], f"{tag}_flat_out")
    last = len(shape) - 2
    terms = g.gather(flat, last, np.array([p[0] for p in perms]), f"{tag}_row0")
    for i in range(1, n):
        row = g.gather(flat, last, np.array([i * n + p[i] for p in perms]), f"{tag}_row{i}")
        terms = g.node("Mul", [terms, row], f"{tag}_prod{i}")
    signed = g.node("Mul", [terms, g.add_constant(f"{tag}_signs", signs)], f"{tag}_signed")
    axes = g.add_constant(f"{tag}_axes", np.array([last], dtype=np.int64))
    g.node("ReduceSum", [signed, axes], node.output[0], keepdims=0)
    g.notes.append(f"{where}: {n} x {n} → the Leibniz formula ({len(perms)} signed products)")
    return True


def _pow(node: Any, g: _Graph, k: int) -> bool:
    """A Pow with a constant exponent tensor of several non-negative integers (ezkl takes only
    a scalar power): ``sum over each exponent e of x ** e * (exponent == e)``."""
    import numpy as np

    exponent = g.constant(node.input[1])
    if exponent is None or exponent.size <= 1 or g.opset < 7:
        return False
    values = np.unique(exponent)
    if np.any(values != np.round(values)) or np.any(values < 0):
        return False
    shape = np.broadcast_shapes(g.shape(node.input[0], _where(node)), exponent.shape)
    tag = f"zkml_pow{k}"
    x = node.input[0]
    terms: list[str] = []
    for e in values.astype(int).tolist():
        full = np.broadcast_to(exponent == e, shape).astype(np.float32)
        mask = g.add_constant(f"{tag}_m{e}", full)
        if e == 0:
            terms.append(mask)
            continue
        power = g.node("Pow", [x, _scalar(g, float(e), f"{tag}_e{e}")], f"{tag}_x{e}")
        terms.append(g.node("Mul", [power, mask], f"{tag}_t{e}"))
    if len(terms) == 1:
        g.node("Identity", terms, node.output[0])
    else:
        g.node("Sum", terms, node.output[0])
    g.notes.append(
        f"{_where(node)}: exponents {values.astype(int).tolist()} → one scalar Pow each, masked"
    )
    return True


def _dft(node: Any, g: _Graph, k: int) -> bool:
    """A DFT is linear in its input: along the signal axis and the (real, imaginary) axis it is
    one constant real matrix, read off onnxruntime running the node on basis vectors; the
    rewrite moves those two axes last, flattens them and multiplies by the matrix."""
    import numpy as np

    where = _where(node)
    x_shape = g.shape(node.input[0], where)
    rank = len(x_shape)
    if g.opset >= 20:
        given = g.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and given is None:
            return False
        axis = int(given.reshape(-1)[0]) if given is not None else -2
    else:
        axis = int(_attr(node, "axis", 1))
    axis %= rank
    if axis == rank - 1:
        return False
    reduced = tuple(d if a in (axis, rank - 1) else 1 for a, d in enumerate(x_shape))
    run = _node_runner(node, g, reduced)
    if run is None:
        return False
    rows = []
    out_shape: tuple[int, ...] = ()
    for flat in range(x_shape[axis] * x_shape[-1]):
        basis = np.zeros(reduced, dtype=np.float32)
        basis.reshape(x_shape[axis], x_shape[-1])[
            np.unravel_index(flat, (x_shape[axis], x_shape[-1]))
        ] = 1.0
        answer = run(basis)
        out_shape = answer.shape
        rows.append(answer.reshape(-1))
    matrix = np.stack(rows).astype(np.float32)  # [N * c, K * d]
    out_len, parts = out_shape[axis], out_shape[-1]
    others = [a for a in range(rank - 1) if a != axis]
    perm = [*others, axis, rank - 1]
    lead = [x_shape[a] for a in others]
    tag = f"zkml_dft{k}"

    def apply(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        moved = np.transpose(x, perm).reshape(*lead, -1) @ matrix
        return np.transpose(moved.reshape(*lead, out_len, parts), np.argsort(perm))

    probe = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    full = _node_runner(node, g, x_shape)
    if full is None:
        return False
    expected = full(probe)
    if expected.shape != apply(probe).shape or not np.allclose(apply(probe), expected, atol=1e-4):
        return False
    _check_reference(node, g, x_shape, full, "DFT")
    x = g.node("Transpose", [node.input[0]], f"{tag}_t", perm=perm)
    flat_shape = g.add_constant(f"{tag}_flat", np.array([*lead, -1], dtype=np.int64))
    x = g.node("Reshape", [x, flat_shape], f"{tag}_flat_out")
    x = g.node("MatMul", [x, g.add_constant(f"{tag}_m", matrix)], f"{tag}_mm")
    split = g.add_constant(f"{tag}_split", np.array([*lead, out_len, parts], dtype=np.int64))
    x = g.node("Reshape", [x, split], f"{tag}_split_out")
    g.node("Transpose", [x], node.output[0], perm=[int(a) for a in np.argsort(perm)])
    g.notes.append(f"{where}: axis {axis} → one constant MatMul over (signal, real/imaginary)")
    return True


#: A GridSample (DeformConv) becomes a constant [input positions (elements), output positions
#: (elements)] matrix per sample: past this many entries its MatMul would not fit in 2^20 rows.
MAX_GRID_SAMPLE_MATRIX = 1 << 18


def _grid_sample(node: Any, g: _Graph, k: int) -> bool:
    """A GridSample with a constant grid is linear in its input (every mode and padding mode
    weighs fixed input positions by fixed weights): per sample one constant matrix from the
    input's spatial positions to the output's, read off onnxruntime running the node on a
    one-hot input per position, then one MatMul over the flattened spatial axes."""
    import numpy as np

    where = _where(node)
    x_shape = g.shape(node.input[0], where)
    grid = g.constant(node.input[1])
    if grid is None or len(x_shape) < 3:
        return False  # a grid fed at run time: the preflight refuses it, naming the fix
    batch, channels, spatial = x_shape[0], x_shape[1], x_shape[2:]
    positions = prod(spatial)
    out_spatial = tuple(int(d) for d in grid.shape[1:-1])
    entries = batch * positions * prod(out_spatial)
    if entries > MAX_GRID_SAMPLE_MATRIX:
        raise UnsupportedModelError(
            f"{where}: its constant sampling matrix would have {entries:,} entries (at most "
            f"{MAX_GRID_SAMPLE_MATRIX:,} fit a circuit); sample a smaller input or grid"
        )
    basis_run = _node_runner(node, g, (batch, positions, *spatial))
    full = _node_runner(node, g, x_shape)
    if basis_run is None or full is None:
        return False
    basis = np.zeros((batch, positions, positions), dtype=np.float32)
    basis[:, np.arange(positions), np.arange(positions)] = 1.0
    answer = basis_run(basis.reshape(batch, positions, *spatial))
    matrix = answer.reshape(batch, positions, -1).astype(np.float32)  # [N, in, out]
    probe = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    expected = full(probe)
    got = (probe.reshape(batch, channels, positions) @ matrix).reshape(expected.shape)
    if not np.allclose(got, expected, atol=1e-4):
        return False
    _check_reference(node, g, x_shape, full, "GridSample")
    tag = f"zkml_gridsample{k}"
    flat_shape = g.add_constant(f"{tag}_flat", np.array([batch, channels, -1], dtype=np.int64))
    x = g.node("Reshape", [node.input[0], flat_shape], f"{tag}_flat_out")
    weights = g.add_constant(f"{tag}_m", matrix[0] if batch == 1 else matrix)
    x = g.node("MatMul", [x, weights], f"{tag}_mm")
    out_shape = g.add_constant(
        f"{tag}_shape", np.array([batch, channels, *expected.shape[2:]], dtype=np.int64)
    )
    g.node("Reshape", [x, out_shape], node.output[0])
    mode = _attr(node, "mode", b"linear").decode()
    g.notes.append(f"{where}: constant grid, mode {mode} → one constant MatMul")
    return True


def _deform_conv(node: Any, g: _Graph, k: int) -> bool:
    """A DeformConv whose weights, offsets, bias and mask are constants is affine in its input:
    each output is a fixed weighted sum of bilinear samples of x at fixed positions. Per sample
    one constant [input elements, output elements] matrix, read off onnxruntime running the
    node on a one-hot input per element (minus its output on zeros: the bias), then one MatMul
    and the bias."""
    import numpy as np

    where = _where(node)
    x_shape = g.shape(node.input[0], where)
    batch, size = x_shape[0], prod(x_shape[1:])
    run = _node_runner(node, g, x_shape)
    if run is None:
        return False  # weights or offsets fed at run time: the preflight names them
    bias = run(np.zeros(x_shape, dtype=np.float32))
    out_size = prod(bias.shape[1:])
    if batch * size * out_size > MAX_GRID_SAMPLE_MATRIX:
        raise UnsupportedModelError(
            f"{where}: its constant sampling matrix would have {batch * size * out_size:,} "
            f"entries (at most {MAX_GRID_SAMPLE_MATRIX:,} fit a circuit); use a smaller input"
        )
    matrix = np.zeros((batch, size, out_size), dtype=np.float32)
    for i in range(size):
        basis = np.zeros((batch, size), dtype=np.float32)
        basis[:, i] = 1.0
        matrix[:, i] = (run(basis.reshape(x_shape)) - bias).reshape(batch, out_size)
    flat_bias = bias.reshape(batch, 1, out_size).astype(np.float32)
    probe = np.random.default_rng(0).normal(size=x_shape).astype(np.float32)
    got = probe.reshape(batch, 1, size) @ matrix + flat_bias
    if not np.allclose(got.reshape(bias.shape), run(probe), atol=1e-4):
        return False
    _check_reference(node, g, x_shape, run, "DeformConv")
    tag = f"zkml_deformconv{k}"
    flat_shape = g.add_constant(f"{tag}_flat", np.array([batch, 1, size], dtype=np.int64))
    x = g.node("Reshape", [node.input[0], flat_shape], f"{tag}_flat_out")
    x = g.node("MatMul", [x, g.add_constant(f"{tag}_m", matrix)], f"{tag}_mm")
    if np.any(flat_bias):
        x = g.node("Add", [x, g.add_constant(f"{tag}_b", flat_bias)], f"{tag}_biased")
    out_shape = g.add_constant(f"{tag}_shape", np.array(bias.shape, dtype=np.int64))
    g.node("Reshape", [x, out_shape], node.output[0])
    g.notes.append(f"{where}: constant weights and offsets → one constant MatMul")
    return True


def _optional_get_element(node: Any, g: _Graph, k: int) -> bool:
    """``OptionalGetElement`` of a tensor (not an optional) is that tensor: an Identity."""
    if not node.input or node.input[0] not in g.elem_types:  # an optional, or unknown
        return False
    g.node("Identity", [node.input[0]], node.output[0])
    g.notes.append(f"{_where(node)}: of a tensor, that tensor → Identity")
    return True


def _binarizer(node: Any, g: _Graph, k: int) -> bool:
    """ai.onnx.ml's Binarizer (tract reads no ai.onnx.ml operator) by its definition: 1 where
    ``x > threshold``, else 0, in x's type: ``Cast(Greater(x, threshold))``, so exact. A model
    of ai.onnx.ml operators only gets, for those two nodes, the latest standard operator set
    of its IR version (the node test's IR 3: operator set 8)."""
    import numpy as np
    from onnx import helper

    elem = g.elem_types.get(node.input[0]) if node.input else None
    if elem is None:
        return False
    if g.opset == 0:
        ir = g.model.ir_version
        opset = max((v[2] for v in helper.VERSION_TABLE if v[1] <= ir), default=0)
        g.model.opset_import.append(helper.make_opsetid("", opset))
        g.opset = opset
    if g.opset < 7:
        return False  # Greater before 7 broadcast only by attribute
    threshold = float(_attr(node, "threshold", 0.0))
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    bound = g.add_constant(f"zkml{k}_threshold", np.array(threshold, dtype=dtype))
    above = g.node("Greater", [node.input[0], bound], f"zkml{k}_above")
    g.node("Cast", [above], node.output[0], to=elem)
    g.notes.append(f"{_where(node)} → Cast(Greater(x, {threshold:g})), its definition")
    return True


def _recurrent_directions(node: Any, g: _Graph, k: int) -> bool:
    """An RNN, GRU or LSTM run ``reverse`` or ``bidirectional`` (ezkl proves the reverse
    direction as if forward, off by up to 0.34, and fails on bidirectional ones with "capacity
    overflow") as one forward layer per direction: that direction's slice of the weights,
    biases, peepholes and initial states (constant, or a Gather where fed); the reverse one
    reads the sequence reversed (a Gather of the indices T-1 … 0) and its outputs are reversed
    back; the directions' outputs concatenated on their ``num_directions`` axis. The same
    recurrences, so exact. Left alone: a batch-first layout, sequence lengths fed (each batch
    entry reversed by its own length), a length that is not static, activation parameters."""
    import numpy as np
    from onnx import helper

    direction = _attr(node, "direction", b"forward").decode()
    inputs = [*node.input, *[""] * (8 - len(node.input))]
    if direction not in ("reverse", "bidirectional") or _attr(node, "layout", 0) != 0:
        return False
    if inputs[4] or any(
        _attr(node, a, None) is not None for a in ("activation_alpha", "activation_beta")
    ):
        return False
    shape = g.shape_of(inputs[0])
    if shape is None or shape[0] <= 0:
        return False
    backwards = np.arange(shape[0] - 1, -1, -1, dtype=np.int64)
    dirs = [True] if direction == "reverse" else [False, True]  # True: reversed in time
    activations = list(_attr(node, "activations", []))
    per = len(activations) // len(dirs)
    tag = f"zkml{k}_dir"
    parts: list[list[str]] = [[] for _ in node.output]
    for d, reverse in enumerate(dirs):
        ins = [g.gather(inputs[0], 0, backwards, f"{tag}{d}_x") if reverse else inputs[0]]
        for p in (1, 2, 3, 4, 5, 6, 7):
            value = g.constant(inputs[p]) if inputs[p] else None
            if not inputs[p]:
                ins.append("")
            elif value is None:  # fed at run time (the node tests feed the weights too)
                ins.append(g.gather(inputs[p], 0, np.array([d]), f"{tag}{d}_{p}"))
            else:
                ins.append(g.add_constant(f"{tag}{d}_{p}", value[d : d + 1]))
        outs = [f"{tag}{d}_out{j}" if name else "" for j, name in enumerate(node.output)]
        layer = helper.make_node(node.op_type, ins[: len(node.input)], outs, name=f"{tag}{d}")
        layer.attribute.extend(
            a for a in node.attribute if a.name not in ("direction", "activations")
        )
        _set_attr(layer, "direction", "forward")
        if activations:
            _set_attr(layer, "activations", activations[d * per : (d + 1) * per])
        g.nodes.append(layer)
        for j, out in enumerate(outs):
            reversed_y = out and j == 0 and reverse
            parts[j].append(g.gather(out, 0, backwards, f"{tag}{d}_y") if reversed_y else out)
    for j, name in enumerate(node.output):
        if name:
            g.node("Concat", parts[j], name, axis=1 if j == 0 else 0)
    g.notes.append(f"{_where(node)}: {direction} → one forward layer per direction")
    return True


def _mod(node: Any, g: _Graph, k: int) -> bool:
    """A floating-point Mod (ezkl has no remainder operator): ``x - y * trunc(x / y)`` with
    ``trunc(q) = Sign(q) * Floor(|q|)`` for fmod 1 (C's fmod), ``x - y * Floor(x / y)`` for
    fmod 0 (the divisor's sign, opset 28's float Mod). Floor is exact as ezkl's Floor is: at
    a multiple of y the fixed-point quotient decides, as for any Floor."""
    from onnx import TensorProto

    if g.elem_types.get(node.input[0]) not in (TensorProto.FLOAT, TensorProto.DOUBLE):
        return False  # integer Mod: integer tensors have no circuit encoding here; left alone
    tag = f"zkml_mod{k}"
    x, y = node.input[0], node.input[1]
    quotient = g.node("Div", [x, y], f"{tag}_q")
    fmod = int(_attr(node, "fmod", 0))
    if fmod:
        magnitude = g.node("Floor", [g.node("Abs", [quotient], f"{tag}_abs")], f"{tag}_floor")
        whole = g.node("Mul", [g.node("Sign", [quotient], f"{tag}_sign"), magnitude], f"{tag}_t")
    else:
        whole = g.node("Floor", [quotient], f"{tag}_floor")
    g.node("Sub", [x, g.node("Mul", [y, whole], f"{tag}_yq")], node.output[0])
    form = "x - y * Sign(x / y) * Floor(|x / y|)" if fmod else "x - y * Floor(x / y)"
    g.notes.append(f"{_where(node)}: fmod {fmod} → {form}")
    return True


def _softplus(node: Any, g: _Graph, k: int) -> bool:
    """``Relu(x) + Log(1 + Exp(-|x|))``: ``log(1 + e^x) = max(x, 0) + log(1 + e^-|x|)`` for
    every x, so exact. ezkl computes Softplus as ``Log(1 + Exp(x))``, which feeds e^x to the
    Log's lookup (Mish's node test, x up to 10, e^10 ~ 22,026: no calibration fits in 2^20
    rows); here Exp reads (-inf, 0] and Log [1, 2]."""
    if g.opset < 7:  # multidirectional broadcasting of the scalar 1
        return False
    tag = f"zkml_softplus{k}"
    x = node.input[0]
    below = g.node("Neg", [g.node("Abs", [x], f"{tag}_abs")], f"{tag}_neg")
    shifted = g.node(
        "Add", [g.node("Exp", [below], f"{tag}_exp"), _scalar(g, 1.0, f"{tag}_one")], f"{tag}_1p"
    )
    tail = g.node("Log", [shifted], f"{tag}_log")
    g.node("Add", [g.node("Relu", [x], f"{tag}_relu"), tail], node.output[0])
    g.notes.append(f"{_where(node)} → Relu(x) + Log(1 + Exp(-|x|)) (Exp bounded by 1)")
    return True


def _reduce_prod(node: Any, g: _Graph, k: int) -> bool:
    """ReduceProd as pairwise products: per reduced axis, the first half of the slices times
    the second half (Gathers of constant indices, one Mul), an odd last slice carried along
    (Concat), until one slice is left. ezkl multiplies all n factors before it rescales, at
    n times the input's scale (2^84 at n = 12: no calibration fits); a Mul of two rescales
    at once. The same product (multiplication is associative and commutative), so exact."""
    import numpy as np

    x = node.input[0]
    shape = g.shape_of(x)
    if g.opset < 5 or shape is None or min(shape, default=1) < 1:  # Reshape's shape an input
        return False
    axes_in = node.input[1] if len(node.input) > 1 else ""
    axes = g.constant(axes_in) if axes_in else _attr(node, "axes", None)
    if axes_in and axes is None:
        return False  # axes fed at run time
    rank = len(shape)
    picked = sorted({int(a) % rank for a in np.ravel(axes)}) if axes is not None else []
    if not picked:
        if int(_attr(node, "noop_with_empty_axes", 0)):
            return False  # the identity: nothing to multiply
        picked = list(range(rank))
    tag = f"zkml_prod{k}"
    current, dims = x, list(shape)
    for a in picked:
        n, level = dims[a], 0
        while n > 1:
            half, step = n // 2, f"{tag}_{a}_{level}"
            low = g.gather(current, a, np.arange(half), f"{step}_lo")
            high = g.gather(current, a, np.arange(half, 2 * half), f"{step}_hi")
            product = g.node("Mul", [low, high], f"{step}_mul")
            if n % 2:
                odd = g.gather(current, a, np.array([n - 1]), f"{step}_odd")
                product = g.node("Concat", [product, odd], f"{step}_cat", axis=a)
            current, n, level = product, half + n % 2, level + 1
        dims[a] = 1
    keep = int(_attr(node, "keepdims", 1))
    out = dims if keep else [d for i, d in enumerate(dims) if i not in picked]
    target = g.add_constant(f"{tag}_shape", np.array(out, dtype=np.int64))
    g.node("Reshape", [current, target], node.output[0])
    g.notes.append(f"{_where(node)}: over axes {picked} → pairwise Mul of halves")
    return True


# --- MaxPool --------------------------------------------------------------------------------


def _matmul_broadcast(node: Any, g: _Graph, k: int) -> bool:
    """A MatMul of two stacks (rank >= 3 each) whose batch dims differ: each operand's size-1
    batch axes repeated to the broadcast size first (a Gather of index 0, a copy), so the
    MatMul multiplies equal stacks, which is what broadcasting does. ezkl failed on
    [3, 1, 3, 4] @ [1, 2, 4, 2] ("General synthesis error"); it proves equal stacks."""
    import numpy as np

    shapes = [g.shape_of(name) for name in node.input]
    if any(s is None or len(s) < 3 or any(d <= 0 for d in s) for s in shapes):
        return False
    a, b = (tuple(s) for s in shapes if s is not None)
    if a[:-2] == b[:-2] or len(a) != len(b):
        return False
    batch = np.broadcast_shapes(a[:-2], b[:-2])
    inputs = list(node.input)
    for position, shape in enumerate((a, b)):
        for axis, (have, want) in enumerate(zip(shape[:-2], batch, strict=True)):
            if have != want:
                inputs[position] = g.gather(
                    inputs[position], axis, np.zeros(want), f"zkml{k}_bcast{position}_{axis}"
                )
    g.node("MatMul", inputs, node.output[0])
    g.notes.append(f"{_where(node)}: batch dims {a[:-2]} and {b[:-2]} repeated to {batch}")
    return True


def pool_window_index(
    length: int, out: int, kernel: int, stride: int, dilation: int, pad: int
) -> np.ndarray[Any, Any]:
    """[out * kernel] input positions: output o's taps, each padding tap replaced by a real tap
    of the same window (the nearest), so a max over each run of ``kernel`` is the window's max.
    """
    import numpy as np

    o = np.arange(out)[:, None]
    start = o * stride - pad
    j = np.arange(kernel)[None, :]
    # First and last taps of each window that land inside the input.
    j_min = np.maximum(0, -(start // dilation))  # ceil(-start / dilation) when start < 0
    j_max = np.minimum(kernel - 1, (length - 1 - start) // dilation)
    if np.any(j_min > j_max):
        raise ValueError("a window with no input element")
    index = start + np.clip(j, j_min, j_max) * dilation
    return index.reshape(-1)


def _pool_out(
    size: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    ceil: int,
    auto_pad: bytes,
) -> list[int]:
    """Output sizes as onnxruntime computes them (a ceil-mode window that would start past
    the input and its leading padding is dropped, as in PyTorch)."""
    spatial = len(kernel)
    out = []
    for a in range(spatial):
        length, s, span = size[a], strides[a], (kernel[a] - 1) * dilations[a] + 1
        if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
            out.append(-(-length // s))
            continue
        if auto_pad == b"VALID":
            out.append((length - span) // s + 1)
            continue
        room = length + pads[a] + pads[spatial + a] - span
        n = (-(-room // s) if ceil else room // s) + 1
        if ceil and (n - 1) * s >= length + pads[a]:
            n -= 1
        out.append(n)
    return out


def _maxpool(node: Any, g: _Graph, k: int) -> bool:
    if len(node.output) > 1 and node.output[1]:
        return False  # with Indices: left to ezkl
    where = _where(node)
    kernel = [int(t) for t in _attr(node, "kernel_shape", [])]
    spatial = len(kernel)
    strides = [int(s) for s in _attr(node, "strides", [1] * spatial)]
    dilations = [int(d) for d in _attr(node, "dilations", [1] * spatial)]
    pads = [int(p) for p in _attr(node, "pads", [0] * (2 * spatial))]
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    ceil = int(_attr(node, "ceil_mode", 0))
    if not any(pads) and all(d == 1 for d in dilations) and not ceil and auto_pad == b"NOTSET":
        new = _copy(node)
        _explicit_attrs(new, g, kernel)
        _drop_attr(new, "dilations")  # MaxPool-1 has none; ezkl needs none when all are 1
        g.nodes.append(new)
        return True
    x_shape = g.shape(node.input[0], where)
    y_shape = (
        *x_shape[:2],
        *_pool_out(x_shape[2:], kernel, strides, dilations, pads, ceil, auto_pad),
    )
    taps = prod(y_shape[2:]) * prod(kernel) * prod(x_shape[:2])
    if taps > MAX_POOL_TAPS:
        raise UnsupportedModelError(
            f"{where}: {prod(kernel)} taps (dilations {dilations}) over {prod(y_shape)} "
            f"outputs make {taps:,} comparisons, past what a 2^20-row circuit holds; use a "
            "smaller window or input"
        )
    if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
        if any(d != 1 for d in dilations):  # onnx and onnxruntime disagree on its size
            raise UnsupportedModelError(
                f"{where}: auto_pad {auto_pad.decode()} with dilations {dilations}; export it "
                "with explicit pads"
            )
        pads = _same_pads(x_shape, y_shape, kernel, strides, dilations, auto_pad)
    tag = f"zkml_maxpool{k}"
    x = node.input[0]
    for a in range(spatial):
        try:
            index = pool_window_index(
                x_shape[2 + a], y_shape[2 + a], kernel[a], strides[a], dilations[a], pads[a]
            )
        except ValueError:
            raise UnsupportedModelError(f"{where}: a window covers padding only") from None
        x = g.gather(x, 2 + a, index, f"{tag}_{a}")
    g.node(
        "MaxPool",
        [x],
        node.output[0],
        kernel_shape=kernel,
        strides=kernel,
        pads=[0] * (2 * spatial),
    )
    what = [
        f"pads {pads}" if any(pads) else "",
        f"dilations {dilations}" if any(d != 1 for d in dilations) else "",
        "ceil_mode" if ceil else "",
    ]
    g.notes.append(
        f"{where}: {', '.join(w for w in what if w) or 'auto_pad'} → Gather of each window's "
        "taps, MaxPool without padding"
    )
    return True


def _pool(node: Any, g: _Graph, k: int) -> bool:
    kernel = [int(t) for t in _attr(node, "kernel_shape", [])]
    if not kernel:
        return False
    new = _copy(node)
    _explicit_attrs(new, g, kernel)
    g.nodes.append(new)
    return True


def _types(model: Any) -> dict[str, Any]:
    """Every value's TypeProto that shape inference knows (function bodies depend on them)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    graph = inferred.graph
    found = {
        vi.name: vi.type for vi in itertools.chain(graph.input, graph.value_info, graph.output)
    }
    for t in graph.initializer:
        found[t.name] = onnx.helper.make_tensor_type_proto(t.data_type, list(t.dims))
    return found


def _function_body(node: Any, model: Any, types: dict[str, Any], k: int) -> list[Any] | None:
    """The nodes of ``node``'s function body in the ONNX spec (the definition it is
    equivalent to by construction), or None if the operator has none."""
    from onnx.backend.test.case.node import function_testcase_helper

    if any(name and name not in types for name in node.input):
        return None
    input_types = [types[name] for name in node.input if name]
    try:
        bodies, _ = function_testcase_helper(
            _copy(node), input_types, f"zkml{k}", opset_imports=model.opset_import
        )
    except Exception:
        return None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    best: tuple[int, list[Any]] | None = None
    for nodes, imports in bodies:  # one definition per opset version it changed in
        version = max((o.version for o in imports if o.domain in ("", "ai.onnx")), default=0)
        if version <= opset and (best is None or version > best[0]):
            best = (version, nodes)
    return None if best is None else best[1]


def _misread(node: Any) -> bool:
    """An operator ezkl reads but proves with an attribute ignored, so its function body goes
    in its place: SpaceToDepth's ``CRD`` mode (opset 28), proven as the default ``DCR`` (the
    node test came out off by 27, refused by the fidelity check)."""
    return bool(node.op_type == "SpaceToDepth" and _attr(node, "mode", b"DCR") == b"CRD")


def channel_slopes(model: Any) -> None:
    """Give a PRelu-6 per-channel slope ([C]) the shape [C, 1, ..] that PRelu-7 broadcasts the
    same way; onnx's version converter keeps [C], which then broadcasts against the last axis.
    """
    from onnx import numpy_helper

    shapes = _shapes(model)
    slopes = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "PRelu" or node.input[1] not in slopes:
            continue
        tensor = slopes[node.input[1]]
        shape = shapes.get(node.input[0], ())
        if len(tensor.dims) == 1 and len(shape) > 2 and tensor.dims[0] == shape[1] > 1:
            value = numpy_helper.to_array(tensor).reshape([-1] + [1] * (len(shape) - 2))
            tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))
            for vi in model.graph.input:  # old IRs list the slope as a graph input too
                if vi.name == tensor.name:
                    del vi.type.tensor_type.shape.dim[:]
                    for d in value.shape:
                        vi.type.tensor_type.shape.dim.add().dim_value = d


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Static shapes by ONNX shape inference (with data propagation, so a Reshape to a
    computed shape is known). A graph input's symbolic dim (a batch) is 1, the shape the
    circuit is built for; any other unknown dim is -1, including the ``unk__N`` symbols
    inference makes up for values it cannot size (taking those for 1 folded wrong shapes)."""
    import onnx

    fixed: set[str] = {
        d.dim_param
        for vi in model.graph.input
        if vi.type.HasField("tensor_type")
        for d in vi.type.tensor_type.shape.dim
        if d.dim_param
    }
    inferred = model
    for data_prop in (True, False):
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=data_prop)
            break
        except Exception:
            continue
    shapes: dict[str, tuple[int, ...]] = {}
    graph = inferred.graph
    for vi in itertools.chain(graph.input, graph.value_info, graph.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            shapes[vi.name] = tuple(
                d.dim_value if d.HasField("dim_value") else (1 if d.dim_param in fixed else -1)
                for d in tt.shape.dim
            )
    for t in graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def _fold(node: Any, g: _Graph, outputs: set[str]) -> bool:
    """Evaluate a node that computes integers (shapes, axes, indices) from constants and static
    shapes, such as the ``Shape -> Range`` of a function body's reduction axes, and keep its
    result as a constant: ezkl's reader needs those as constants, and the circuit encodes
    only real values. A Constant node's value is recorded; one in a ``value_*`` form (which
    tract cannot read) becomes an initializer."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if node.op_type in RANDOM or any(a.type in (5, 10) for a in node.attribute):  # subgraphs
        return False
    feeds: dict[str, np.ndarray[Any, Any]] = {}
    for position, name in enumerate(node.input):
        if not name:
            continue
        value = g.constant(name)
        if value is None and position == 0 and node.op_type in ("Shape", "Size"):
            shape = g.shape_of(name)
            if shape is None or any(d <= 0 for d in shape):
                return False
            value = np.zeros(shape, dtype=np.float32)
        if value is None:
            return False
        feeds[name] = value
    model = helper.make_model(
        helper.make_graph(
            [node],
            "fold",
            [
                helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)
                )
                for name, v in feeds.items()
            ],
            [helper.make_value_info(name, onnx.TypeProto()) for name in node.output if name],
        ),
        opset_imports=g.model.opset_import,
    )
    try:
        values = ReferenceEvaluator(model).run(None, feeds)
    except Exception:
        return False
    named = [
        (n, np.asarray(v)) for n, v in zip([o for o in node.output if o], values, strict=False)
    ]
    if node.op_type == "Constant":
        for name, value in named:
            g.constants[name] = numpy_helper.from_array(value, name)
        # tract reads only the ``value`` form; ``value_ints`` etc. become initializers.
        if _attr(node, "value", None) is not None or any(n in outputs for n, _ in named):
            return False
        for name, value in named:
            del g.constants[name]
            g.add_constant(name, value)
        return True
    integer = all(v.dtype.kind in "iub" for _, v in named)
    if not named or not integer or any(n in outputs for n, _ in named):
        return False
    for name, value in named:
        g.add_constant(name, value)
        g.folded.add(name)
    return True


#: Operators rewritten directly (before, for those with one, their ONNX function body).
_EXACT: dict[str, Callable[[Any, _Graph, int], bool]] = {
    "LpNormalization": _lp_normalization,
    "LpPool": _lp_pool,
    "RMSNormalization": _rms_normalization,
    "Pow": _pow,
    "DFT": _dft,
    "InstanceNormalization": _instance_normalization,
    "LRN": _lrn,
    "Det": _det,
    "GridSample": _grid_sample,
    "DeformConv": _deform_conv,
    "Mod": _mod,
    "OptionalGetElement": _optional_get_element,
    "MatMul": _matmul_broadcast,
    "RNN": _recurrent_directions,
    "GRU": _recurrent_directions,
    "LSTM": _recurrent_directions,
    "AveragePool": _average_pool,
    "ReduceProd": _reduce_prod,
    "Softplus": _softplus,
}


def _take(g: _Graph, nodes: list[Any], x: str, shape: tuple[int, ...], axis: int, at: int) -> str:
    """Slice ``at`` of ``x`` along ``axis``, without that axis (a Gather of one index, then a
    Reshape: a copy)."""
    import numpy as np
    from onnx import helper

    tag = f"{x}_zkml_at{axis}_{at}"
    index = g.add_constant(f"{tag}_idx", np.array([at], dtype=np.int64))
    rest = g.add_constant(f"{tag}_shape", np.array(shape[:axis] + shape[axis + 1 :], np.int64))
    nodes.append(helper.make_node("Gather", [x, index], [f"{tag}_g"], axis=axis))
    nodes.append(helper.make_node("Reshape", [f"{tag}_g", rest], [tag]))
    return tag


def _stack(g: _Graph, nodes: list[Any], parts: list[str], axis: int, output: str) -> None:
    """``parts`` stacked along a new ``axis`` into ``output`` (Unsqueeze each, Concat)."""
    import numpy as np
    from onnx import helper

    grown = []
    for t, part in enumerate(parts):
        out = f"{output}_zkml_part{t}"
        if g.opset >= 13:
            where = g.add_constant(f"{out}_axis", np.array([axis], dtype=np.int64))
            nodes.append(helper.make_node("Unsqueeze", [part, where], [out]))
        else:
            nodes.append(helper.make_node("Unsqueeze", [part], [out], axes=[axis]))
        grown.append(out)
    nodes.append(helper.make_node("Concat", grown, [output], axis=axis))


class _ScanInput(NamedTuple):
    name: str
    shape: tuple[int, ...]
    axis: int
    reverse: bool


def _unroll(
    g: _Graph,
    nodes: list[Any],
    body: Any,
    state: list[str],
    scans: list[_ScanInput],
    steps: int,
    tag: str,
) -> tuple[list[str], list[list[str]]]:
    """``body`` run ``steps`` times, appended to ``nodes``: the final states and, per scan
    output, the steps' values in step order."""
    from onnx import numpy_helper

    outer = {  # the body's initializers, once for every step
        t.name: g.add_constant(f"{tag}_{t.name}", numpy_helper.to_array(t))
        for t in body.initializer
    }
    n_state = len(state)
    stacked: list[list[str]] = [[] for _ in body.output[n_state:]]
    for t in range(steps):
        names = dict(outer)
        names.update((value.name, state[i]) for i, value in enumerate(body.input[:n_state]))
        for value, scan in zip(body.input[n_state:], scans, strict=True):
            at = steps - 1 - t if scan.reverse else t
            names[value.name] = _take(g, nodes, scan.name, scan.shape, scan.axis, at)
        for body_node in body.node:
            copy = _copy(body_node)
            for position, name in enumerate(copy.input):
                copy.input[position] = names.get(name, name)
            for position, name in enumerate(copy.output):
                if name:
                    names[name] = copy.output[position] = f"{tag}{t}_{name}"
            if copy.name:
                copy.name = f"{tag}{t}_{copy.name}"
            nodes.append(copy)
        produced = [names.get(o.name, o.name) for o in body.output]
        state = produced[:n_state]
        for j, value in enumerate(produced[n_state:]):
            stacked[j].append(value)
    return state, stacked


def _unrolled_scan(node: Any, g: _Graph, k: int) -> list[Any] | None:
    """A Scan over a static sequence length ``T`` as ``T`` copies of its body: step ``t``
    reads slice ``t`` of each scan input (a Gather of one index, then a Reshape without the
    scan axis; the last index first where the direction is reverse), the state the step
    before wrote, and the enclosing graph's values as the body does; the scan outputs are the
    steps' values stacked along their axis (Unsqueeze, Concat). Scan-8's batch axis: the same
    per batch entry, stacked. The same computation in the same order, so exact. ezkl's reader
    takes few Scans (none whose body declares untyped inputs, as LinearAttention's does); the
    unrolled nodes are plain ones, rewritten again. None (left as it is) where a length is
    not static, the body holds a subgraph, or Scan-8's sequence lengths are fed."""
    from onnx import helper

    body = _attr(node, "body", None)
    if body is None or any(a.type in (5, 10) for n in body.node for a in n.attribute):
        return None
    m = int(_attr(node, "num_scan_inputs", 0))
    batched = g.opset < 9  # Scan-8: [sequence_lens], states [B, ...], scan inputs [B, T, ...]
    if batched and node.input[0]:
        return None
    inputs = list(node.input[1:] if batched else node.input)
    n_state = len(inputs) - m
    n_out = len(body.output) - n_state
    if m < 1 or n_state < 0 or n_out < 0 or any(not name for name in inputs):
        return None
    shapes: list[tuple[int, ...]] = []
    for position, name in enumerate(inputs):
        if position < n_state and not batched:  # a state is read whole: its shape is not needed
            shapes.append(())
            continue
        shape = g.shape_of(name)
        if shape is None or any(d <= 0 for d in shape):
            return None
        shapes.append(tuple(shape))
    if batched:
        axes, reverse = [1] * m, list(_attr(node, "directions", [0] * m))
        out_axes, out_reverse = [1] * n_out, [0] * n_out
    else:
        axes = [
            a % len(s)
            for a, s in zip(_attr(node, "scan_input_axes", [0] * m), shapes[n_state:], strict=True)
        ]
        reverse = list(_attr(node, "scan_input_directions", [0] * m))
        out_axes = [int(a) for a in _attr(node, "scan_output_axes", [0] * n_out)]
        out_reverse = list(_attr(node, "scan_output_directions", [0] * n_out))
    lengths = {s[a] for a, s in zip(axes, shapes[n_state:], strict=True)}
    batches = {s[0] if s else 0 for s in shapes} if batched else {1}
    if len(lengths) != 1 or len(batches) != 1:
        return None
    (steps,), (batch,) = lengths, batches
    g.scan_states.update(inputs[:n_state])
    tag = f"zkml{k}_scan"
    nodes: list[Any] = []
    finals: list[list[str]] = [[] for _ in range(n_state)]
    outputs: list[list[str]] = [[] for _ in range(n_out)]
    for b in range(batch):
        names, dims = inputs, shapes
        if batched:  # this batch entry: one axis less everywhere
            names = [_take(g, nodes, x, s, 0, b) for x, s in zip(inputs, shapes, strict=True)]
            dims = [s[1:] for s in shapes]
        scans = [
            _ScanInput(x, s, a - batched, bool(r))
            for x, s, a, r in zip(names[n_state:], dims[n_state:], axes, reverse, strict=True)
        ]
        state, stacked = _unroll(g, nodes, body, names[:n_state], scans, steps, f"{tag}{b}_")
        for i, value in enumerate(state):
            finals[i].append(value)
        for j, (parts, axis, rev) in enumerate(zip(stacked, out_axes, out_reverse, strict=True)):
            name = node.output[n_state + j] if not batched else f"{tag}{b}_out{j}"
            if name:
                _stack(g, nodes, parts[::-1] if rev else parts, axis - batched, name)
            outputs[j].append(name)
    for i, name in enumerate(node.output[:n_state]):
        if name and batched:
            _stack(g, nodes, finals[i], 0, name)
        elif name:
            nodes.append(helper.make_node("Identity", [finals[i][0]], [name]))
    for j, name in enumerate(node.output[n_state:]):
        if name and batched:
            _stack(g, nodes, outputs[j], 0, name)
    g.notes.append(
        f"{_where(node)} → its body unrolled over the {steps} step{'s' if steps != 1 else ''}"
        + (f", for each of the batch's {batch} entries (Scan-8)" if batched else "")
    )
    return nodes


def _refuse_untyped_loop_bodies(g: _Graph) -> None:
    """A Loop, or a Scan not unrolled, whose body declares inputs without a type (as
    LinearAttention's function body does): ezkl's reader (tract) panics on it ("called
    `Option::unwrap()` on a `None` value", naming nothing). Refuse naming the node and the
    way out instead."""
    for node in g.nodes:
        for attribute in node.attribute:
            if node.op_type not in ("Scan", "Loop") or attribute.type != 5:
                continue
            untyped = [i.name for i in attribute.g.input if not i.type.tensor_type.elem_type]
            if untyped:
                raise UnsupportedModelError(
                    f"{_where(node)}: its body's inputs {untyped[:3]} have no types, which "
                    "ezkl's ONNX reader cannot parse; export the recurrence unrolled over the "
                    "fixed sequence length"
                )


def _inputs_read(nodes: list[Any]) -> set[str]:
    """The names ``nodes`` read, with those a subgraph (Scan's, Loop's, If's body) reads
    from the enclosing graph: pruning those made the model invalid (LinearAttention's body)."""
    read: set[str] = set()
    for node in nodes:
        read.update(node.input)
        for attribute in node.attribute:
            for graph in [*([attribute.g] if attribute.type == 5 else []), *attribute.graphs]:
                read |= _inputs_read(list(graph.node))
    return read


def _drop_unused(g: _Graph, name: str) -> None:
    """Remove the nodes that computed ``name`` (and what fed only them) once nothing reads it."""
    outputs = {o.name for o in g.model.graph.output}
    pending = [name]
    while pending:
        value = pending.pop()
        if value in outputs or value in _inputs_read(g.nodes):
            continue
        for n in [n for n in g.nodes if value in n.output]:
            if not set(n.output) & (_inputs_read(g.nodes) | outputs):
                g.nodes.remove(n)
                pending.extend(i for i in n.input if i)


def _row_all_masked(
    reduce: Any, bias: np.ndarray[Any, Any], values: dict[str, Any], g: _Graph
) -> tuple[Any, np.ndarray[Any, Any]] | None:
    """``Equal(ReduceMax(x + bias), -inf)``, the Attention body's "row all masked" test, read
    by that Equal only, ``x`` finite at run time and ``bias`` a constant of finite values and
    -inf: a maximum is -inf iff every entry it takes is, and an entry of ``x + bias`` is -inf
    iff its ``bias`` one is, so the test is the same over ``bias`` alone, a constant. Returns
    the Equal and its value; None where the pattern is not this one."""
    import numpy as np

    if reduce.op_type != "ReduceMax" or int(_attr(reduce, "noop_with_empty_axes", 0)):
        return None
    readers = [n for n in g.nodes if reduce.output[0] in n.input]
    if len(readers) != 1 or readers[0].op_type != "Equal":
        return None
    equal = readers[0]
    other = [i for i in equal.input if i != reduce.output[0]]
    shape = g.shape_of(reduce.input[0])
    if len(other) != 1 or other[0] not in values or shape is None or min(shape, default=1) < 1:
        return None
    limit = np.asarray(values[other[0]])
    if limit.dtype.kind != "f" or not np.all(np.isneginf(limit)):
        return None
    axes_in = reduce.input[1] if len(reduce.input) > 1 else ""
    axes = values.get(axes_in) if axes_in else _attr(reduce, "axes", None)
    if axes_in and axes is None:
        axes = g.constant(axes_in)
        if axes is None:
            return None
    try:
        full = np.broadcast_to(np.where(np.isfinite(bias), 0.0, -np.inf), shape)
    except ValueError:  # a shape inference got wrong: not this pattern
        return None
    picked = None if axes is None or len(axes) == 0 else tuple(int(a) for a in np.ravel(axes))
    top = np.max(full, axis=picked, keepdims=bool(int(_attr(reduce, "keepdims", 1))))
    return equal, np.equal(top, limit)


def _masked_softmax(
    add: Any, mask: str, values: dict[str, Any], g: _Graph, tainted: frozenset[str]
) -> bool:
    """``Softmax(x + mask)`` over the last axis, ``mask`` a constant of finite values and -inf
    (a causal mask), the Add reaching the Softmax through float Casts and Adds of finite
    run-time values (Attention's mask fed at run time, added to the causal one) only: the Add
    keeps the finite part and the Softmax becomes one over the kept entries alone, which is
    what -inf does: ``e = Exp(s' - ReduceMax(s')) * keep``, ``e / ReduceSum(e)``, where ``s'``
    puts the row's minimum in place of each masked entry (so the max is a kept entry's). A
    "row all masked" test on the way (``_row_all_masked``) becomes its constant. Exact; a
    row with every entry masked is left to the refusal (its softmax is 0 / 0). ``tainted``:
    the run-time values an infinite constant may reach (not finite, so not added)."""
    import numpy as np

    bias = np.asarray(values[mask])
    if bias.dtype.kind != "f" or np.any(np.isnan(bias)) or np.any(bias == np.inf):
        return False
    keep = np.isfinite(bias)
    if keep.ndim == 0 or np.any(~keep.any(axis=-1)):
        return False
    if any(i in tainted for i in add.input if i != mask):  # x itself perhaps infinite
        return False
    consumers: dict[str, list[Any]] = {}
    for n in g.nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    node, outputs = add, {o.name for o in g.model.graph.output}
    tests: list[tuple[Any, Any, np.ndarray[Any, Any]]] = []  # (ReduceMax, Equal, its value)
    while True:
        after = []
        for n in consumers.get(node.output[0], []):
            if n.op_type == "CastLike" and n.input[0] != node.output[0]:
                continue  # reads the type only, which stays
            test = _row_all_masked(n, bias, values, g)
            if test is None:
                after.append(n)
            else:
                tests.append((n, *test))
        shown = [node.output[0], *(n.output[0] for n in after if n.op_type in ("Identity", "Cast"))]
        if set(shown) & outputs:  # the masked scores themselves are an output (Attention's
            raise UnsupportedModelError(  # qk_matmul_output): the -inf cannot be rewritten away
                f"{_where(add)}: the graph output {sorted(set(shown) & outputs)[0]!r} holds "
                "scores masked with -inf (a causal or boolean attention mask), which no "
                "fixed-point circuit outputs; drop that output or mask with a finite value"
            )
        if len(after) != 1:
            return False
        value, node = node.output[0], after[0]
        if node.op_type == "Cast" and int(_attr(node, "to", 0)) == 1:  # float to float
            continue
        other = [i for i in node.input if i != value]
        if node.op_type == "Add" and len(other) == 1 and other[0] not in values:
            if other[0] in tainted:  # perhaps infinite: not a finite run-time value
                return False
            continue
        break
    rank = len(g.shape_of(node.input[0]) or ())
    axis = int(_attr(node, "axis", -1 if g.opset >= 13 else 1))
    if node.op_type != "Softmax" or rank == 0 or axis not in (-1, rank - 1):
        return False
    tag = f"zkml_maskedsoftmax{g.nodes.index(node)}"
    for reduce, equal, masked in tests:
        g.nodes.remove(equal)
        g.nodes.remove(reduce)
        g.add_constant(equal.output[0], masked)
        for i in equal.input:
            _drop_unused(g, i)
        g.notes.append(f"{_where(equal)}: whether a row is all masked, read from the constant mask")
    add.input[list(add.input).index(mask)] = g.add_constant(
        f"{tag}_finite", np.where(keep, bias, 0).astype(np.float32)
    )
    _drop_unused(g, mask)  # the -inf mask's own computation, if nothing else reads it
    at = g.nodes.index(node)
    emitted, g.nodes = g.nodes[at + 1 :], g.nodes[:at]
    s, y, last = node.input[0], node.output[0], [rank - 1]
    kept = g.add_constant(f"{tag}_keep", keep.astype(np.float32))
    dropped = g.add_constant(f"{tag}_drop", (~keep).astype(np.float32))
    low = _reduce(g, "ReduceMin", s, last, f"{tag}_low")
    filled = g.node(
        "Add",
        [g.node("Mul", [s, kept], f"{tag}_kept"), g.node("Mul", [low, dropped], f"{tag}_fill")],
        f"{tag}_filled",
    )
    top = _reduce(g, "ReduceMax", filled, last, f"{tag}_top")
    shifted = g.node("Sub", [filled, top], f"{tag}_shifted")
    e = g.node("Mul", [g.node("Exp", [shifted], f"{tag}_exp"), kept], f"{tag}_e")
    g.node("Div", [e, _reduce(g, "ReduceSum", e, last, f"{tag}_sum")], y)
    g.nodes.extend(emitted)
    g.notes.append(
        f"{_where(node)}: over x + a constant -inf mask → a softmax over the kept entries"
    )
    return True


def _where_as_masked_softmax(
    node: Any, values: dict[str, Any], derived: set[str], g: _Graph, tainted: frozenset[str]
) -> bool:
    """``Where(c, x, -inf)`` (or ``Where(c, -inf, x)``), ``c`` a constant, ``x`` computed at
    run time (FlexAttention's causal mask): ``x + Where(c, 0, -inf)``, the same value for a
    finite x (inputs are checked finite), so the masked softmax above applies."""
    import numpy as np
    from onnx import helper

    cond, *branches = node.input
    fed = [i for i in branches if i not in derived]
    if cond not in values or len(fed) != 1 or any(i not in values for i in branches if i != fed[0]):
        return False
    taken, other = (np.float32(0) if i == fed[0] else np.asarray(values[i]) for i in branches)
    bias = np.where(np.asarray(values[cond]).astype(bool), taken, other).astype(np.float32)
    name = f"{node.output[0]}_zkml_bias"
    add = helper.make_node("Add", [fed[0], name], list(node.output))
    at = g.nodes.index(node)
    g.nodes[at] = add
    if not _masked_softmax(add, name, {**values, name: bias}, g, tainted):
        g.nodes[g.nodes.index(add)] = node
        return False
    for i in node.input:
        if i != fed[0]:
            _drop_unused(g, i)
    return True


def _refuse_infinite_constants(g: _Graph) -> None:
    """Refuse, naming the node, a run-time computation fed an infinite value computed from
    constants only (Attention's causal or boolean mask: ``Where(mask, -inf, 0)`` added to the
    scores): no fixed-point scale holds it (ezkl: "significant bit truncation"). The one
    exact way out taken: a finite run-time value compared with -inf is False."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    def infinite(tensor: Any) -> bool:
        value = numpy_helper.to_array(tensor)
        return value.dtype.kind == "f" and not np.all(np.isfinite(value))

    if not any(infinite(t) for t in g.constants.values()):
        return
    derived = set(g.constants)  # values computed from constants only
    fed: list[tuple[Any, str]] = []  # (run-time node, constant-derived input)
    producers = []
    for node in g.nodes:
        # CastLike reads only the type of its second input.
        inputs = [i for i in node.input[: 1 if node.op_type == "CastLike" else None] if i]
        if node.op_type in RANDOM or any(a.type in (5, 10) for a in node.attribute):
            continue
        if all(i in derived for i in inputs):
            derived.update(o for o in node.output if o)
            producers.append(
                helper.make_node("Identity", inputs, list(node.output))
                if node.op_type == "CastLike"
                else node
            )
        else:
            fed.extend((node, i) for i in inputs if i in derived)
    wanted = list(dict.fromkeys(name for _, name in fed))
    graph = helper.make_graph(
        producers,
        "constants",
        [],
        [helper.make_value_info(name, onnx.TypeProto()) for name in wanted],
        list(g.model.graph.initializer),
    )
    try:
        model = helper.make_model(graph, opset_imports=g.model.opset_import)
        values = dict(zip(wanted, ReferenceEvaluator(model).run(None, {}), strict=True))
    except Exception:
        return  # not evaluable here: ezkl's own message stands

    def finite(name: str) -> bool:
        value = np.asarray(values[name])
        return value.dtype.kind != "f" or bool(np.all(np.isfinite(value)))

    # Run-time values an infinite constant may reach (through any node, conservatively).
    tainted: set[str] = set()
    for node in g.nodes:
        if any(i in tainted or (i in values and not finite(i)) for i in node.input):
            tainted.update(node.output)
    for node, name in fed:
        if finite(name) or not any(n is node for n in g.nodes):  # or rewritten already
            continue
        other = [i for i in node.input if i and i != name]
        if node.op_type == "Equal" and len(other) == 1 and other[0] not in derived | tainted:
            # A run-time value no infinite constant reaches is finite (inputs are checked
            # finite): comparing it with +-inf is False everywhere (the Attention body's
            # "row all masked" test of a float mask fed at run time).
            x_shape = g.shape_of(other[0])
            inf = np.asarray(values[name])
            if x_shape is not None and all(d > 0 for d in x_shape) and np.all(np.isinf(inf)):
                g.nodes.remove(node)
                false = np.zeros(np.broadcast_shapes(x_shape, inf.shape), dtype=bool)
                g.add_constant(node.output[0], false)
                g.notes.append(f"{_where(node)}: a finite value == -inf → False")
                continue
        reach = frozenset(tainted)
        if node.op_type == "Where" and _where_as_masked_softmax(node, values, derived, g, reach):
            continue
        added = node.op_type == "Add" and len(other) == 1
        if added and _masked_softmax(node, name, values, g, reach):
            continue
        if not finite(name):
            raise UnsupportedModelError(
                f"{_where(node)}: its input {name!r} holds -inf (computed from constants, as "
                "a causal or boolean attention mask is), which no fixed-point circuit holds; "
                "mask with a finite value instead (e.g. a float mask of 0 and -100: exp(-100) "
                "is 0 at any fixed-point scale)"
            )


def _filled_scan_states(g: _Graph) -> None:
    """An unrolled Scan's initial state made by ``ConstantOfShape`` of a constant shape (the
    zero state of LinearAttention's body without a past state) → that fill as an initializer
    of the same name: the same values, so exact. ezkl's reader cannot read the first step's
    MatMul of a state that ConstantOfShape makes ("cannot read this use of MatMulInference").
    Only those fills: folding every ConstantOfShape would change graphs ezkl already proves."""
    import numpy as np
    from onnx import numpy_helper

    outputs = {o.name for o in g.model.graph.output}
    for node in [n for n in g.nodes if n.op_type == "ConstantOfShape"]:
        shape = g.constant(node.input[0]) if node.input else None
        state = node.output[0]
        if state not in g.scan_states or state in outputs or shape is None:
            continue
        fill = _attr(node, "value", None)
        value = np.zeros(1, np.float32) if fill is None else numpy_helper.to_array(fill)
        g.nodes.remove(node)
        g.add_constant(state, np.full(shape.astype(np.int64), value.reshape(-1)[0], value.dtype))
        g.notes.append(f"{_where(node)}: an unrolled Scan's initial state → a constant")


def _scalar_inputs_as_vectors(g: _Graph) -> None:
    """A rank-0 graph input declared ``[1]`` and reshaped to a scalar before its first use:
    ezkl feeds every input as at least ``[1]``, which tract refused against a scalar
    declaration ("Input at index 2 has incorrect dtype or shape (got 1,F32 3.14, expected to
    match fact F32)": Gemm's scalar bias fed at run time). The same value, so exact."""
    import numpy as np
    from onnx import helper

    initializers = {t.name for t in g.model.graph.initializer}
    outputs = {o.name for o in g.model.graph.output}
    for value in g.model.graph.input:
        tt = value.type.tensor_type
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        if not tt.HasField("shape") or len(tt.shape.dim) or value.name in outputs:
            continue
        # The graph input is renamed, not the scalar its nodes read: refusals name the user's.
        name, vector = value.name, f"{value.name}_zkml_vector"
        shape = g.add_constant(f"{vector}_shape", np.array([], dtype=np.int64))
        g.nodes.insert(0, helper.make_node("Reshape", [vector, shape], [name]))
        value.name = vector
        tt.shape.dim.add().dim_value = 1
        g.notes.append(f"input {name!r}: a scalar, fed as [1] and reshaped")


def rewrite(source: Path, target: Path) -> list[str]:
    """Write ``source`` to ``target`` with the rewrites applied; return what was rewritten."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    constants: dict[str, Any] = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = _attr(node, "value", None)
            if value is not None:
                constants[node.output[0]] = value
    types = _types(model)
    elem_types = {k: t.tensor_type.elem_type for k, t in types.items() if t.HasField("tensor_type")}
    g = _Graph(model, opset, constants, _shapes(model), elem_types=elem_types)
    pending = list(graph.node)
    outputs = {o.name for o in graph.output}
    k = folded = 0
    while pending:
        node = pending.pop(0)
        k += 1
        op = node.op_type
        done = False
        if node.domain == "ai.onnx.ml" and op == "Binarizer" and _binarizer(node, g, k):
            continue
        if node.domain in ("", "ai.onnx"):
            if _fold(node, g, outputs):
                folded += 1
                continue
            special = _EXACT.get(op)
            if special is not None and special(node, g, k):
                continue
            unrolled = _unrolled_scan(node, g, k) if op == "Scan" else None
            if unrolled is not None:
                pending[:0] = unrolled
                continue
            if (op in UNIMPLEMENTED and op not in RANDOM) or _misread(node):
                expanded = _function_body(node, model, types, k)
                if expanded is not None:
                    pending[:0] = expanded  # their own nodes may need rewriting too
                    g.notes.append(f"{_where(node)} → its ONNX function body")
                    continue
            if op == "Pad":
                mode = _attr(node, "mode", b"constant").decode()
                done = _constant_pad(node, g, k) if mode == "constant" else _mode_pad(node, g, k)
            elif op == "Conv":
                done = _conv(node, g, k)
            elif op == "ConvTranspose":
                done = _conv_transpose(node, g, k)
            elif op == "PRelu":
                done = _prelu(node, g, k)
            elif op == "BatchNormalization":
                done = _batch_norm(node, g, k)
            elif op in ("Resize", "Upsample"):
                done = _resize(node, g, k)
            elif op == "MaxPool":
                done = _maxpool(node, g, k)
            elif op in _POOLS:
                done = _pool(node, g, k)
        if not done:
            g.nodes.append(node)
    _filled_scan_states(g)
    _refuse_infinite_constants(g)
    _refuse_untyped_loop_bodies(g)
    _scalar_inputs_as_vectors(g)
    if folded:
        plural = "s" if folded != 1 else ""
        g.notes.append(f"{folded} constant-valued node{plural} (shapes, axes) made initializers")
    used = _inputs_read(g.nodes) | outputs
    if folded:  # Constant nodes that fed only folded nodes
        g.nodes = [n for n in g.nodes if n.op_type != "Constant" or set(n.output) & used]
    del graph.node[:]
    graph.node.extend(g.nodes)
    unused = g.folded - used  # intermediate results of a folded computation
    if unused:
        keep = [t for t in graph.initializer if t.name not in unused]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        keep_inputs = [i for i in graph.input if i.name not in unused]
        del graph.input[:]
        graph.input.extend(keep_inputs)
    onnx.save(model, str(target))
    return g.notes
