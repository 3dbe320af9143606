"""Inner loops written out as explicit SIMD code (Numba intrinsics emitting LLVM vector IR).

Numba's loops vectorise only where LLVM can prove them safe and worth it.  A short inner
loop whose trip count changes with the outer index (the triangle of a cross-product) gets
runtime alias checks, a scalar remainder and loop set-up on every outer step, which cost
more than the work itself when the loop runs a few vectors.  The kernels here state the
vector operations directly: eight doubles per operation (an AVX-512 register, or two AVX2
registers where the machine has no AVX-512; LLVM splits the operations, lane for lane), in
a fixed order of additions, so the result is the same on every machine and every run.

Only multiplications and additions are emitted, never fused multiply-adds, as everywhere in
simbench (see :mod:`simbench._jit`).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from simbench._jit import kernel

#: doubles per vector operation; the width that buffers for :func:`syrk8` are padded to
LANES = 8

_V8 = ir.VectorType(ir.DoubleType(), LANES)
_I32 = ir.IntType(32)
_BROADCAST = ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)


def _item(context, builder, aty, ary, indices):
    return cgutils.get_item_pointer(
        context, builder, aty, ary, indices, wraparound=False, boundscheck=False
    )


def _splat(builder, value):
    vec = builder.insert_element(ir.Constant(_V8, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(vec, ir.Constant(_V8, ir.Undefined), _BROADCAST)


def _vload(builder, ptr, offset):
    return builder.load(builder.bitcast(builder.gep(ptr, [offset]), _V8.as_pointer()), align=8)


def _vstore(builder, value, ptr, offset):
    builder.store(value, builder.bitcast(builder.gep(ptr, [offset]), _V8.as_pointer()), align=8)


@intrinsic
def syrk8(typingctx, C, X, W, r, p):
    """The weighted rank-8 update of a lower triangle, for :func:`weighted_syrk`.

    ``C[j, k] += (((t_0 + t_1) + t_2) + t_3) + (((t_4 + t_5) + t_6) + t_7)`` with
    ``t_s = (W[r + s] X[r + s, j]) X[r + s, k]``, for ``j < 2 ceil(p / 2)`` and
    ``k < 8 ceil((j + 1) / 8)`` (the lower triangle, and some of the upper one: whole
    vectors).  Rows ``j`` and ``j + 1`` are updated in one sweep, which loads each vector of
    the eight rows of ``X`` once for both.

    Unchecked contract (the caller's): ``C`` is ``(pp, pp)`` and ``X`` has ``pp`` columns,
    ``pp`` a multiple of :data:`LANES` and above ``p`` when ``p`` is odd, both C-contiguous
    (best aligned to 64 bytes); ``X[:, p:]`` is zero; rows ``r .. r + 7`` exist in ``X`` and
    ``W``.
    """
    ok = (
        isinstance(C, types.Array)
        and isinstance(X, types.Array)
        and isinstance(W, types.Array)
        and C.ndim == 2
        and X.ndim == 2
        and W.ndim == 1
        and C.dtype == X.dtype == W.dtype == types.float64
        and C.layout == X.layout == "C"
    )
    if not ok:
        raise TypingError("syrk8 takes C (2-D), X (2-D), W (1-D), float64 and C-contiguous")
    sig = types.void(C, X, W, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        Cty, Xty, Wty, _, _ = signature.args
        Ca = context.make_array(Cty)(context, builder, args[0])
        Xa = context.make_array(Xty)(context, builder, args[1])
        Wa = context.make_array(Wty)(context, builder, args[2])
        r, p = args[3], args[4]
        intp = context.get_value_type(types.intp)
        zero = intp(0)
        rows = [builder.add(r, intp(s)) for s in range(LANES)]
        xs = [_item(context, builder, Xty, Xa, [rows[s], zero]) for s in range(LANES)]
        ws = [builder.load(_item(context, builder, Wty, Wa, [rows[s]])) for s in range(LANES)]
        pairs = builder.ashr(builder.add(p, intp(1)), intp(1))
        with cgutils.for_range(builder, pairs) as outer:
            j = builder.mul(outer.index, intp(2))
            coefs, crows = [], []
            for h in range(2):
                jh = builder.add(j, intp(h))
                # c_s = W_s x_sj, broadcast to every lane
                coefs.append(
                    [_splat(builder, builder.fmul(ws[s], builder.load(builder.gep(xs[s], [jh]))))
                     for s in range(LANES)]
                )  # fmt: skip
                crows.append(_item(context, builder, Cty, Ca, [jh, zero]))
            # vectors up to and including the diagonal of row j + 1
            nvec = builder.ashr(builder.add(j, intp(LANES + 1)), intp(3))
            with cgutils.for_range(builder, nvec) as inner:
                off = builder.mul(inner.index, intp(LANES))
                xv = [_vload(builder, xs[s], off) for s in range(LANES)]
                for h in range(2):
                    t = [builder.fmul(xv[s], coefs[h][s]) for s in range(LANES)]
                    lo = builder.fadd(builder.fadd(builder.fadd(t[0], t[1]), t[2]), t[3])
                    hi = builder.fadd(builder.fadd(builder.fadd(t[4], t[5]), t[6]), t[7])
                    acc = builder.fadd(_vload(builder, crows[h], off), builder.fadd(lo, hi))
                    _vstore(builder, acc, crows[h], off)
        return context.get_dummy_value()

    return sig, codegen


@kernel(inline=True)
def padded_width(p):
    """Columns of the buffers :func:`weighted_syrk` takes for ``p`` columns of ``X``."""
    return max(LANES, -(-(p + (p & 1)) // LANES) * LANES)


@kernel
def aligned_zeros(rows, cols):
    """A zeroed ``(rows, cols)`` float64 array whose data start on a 64-byte boundary."""
    raw = np.zeros(rows * cols + LANES)
    start = (-raw.ctypes.data % 64) // 8
    return raw[start : start + rows * cols].reshape((rows, cols))


@kernel
def weighted_syrk(X, i0, m, W, C, c0, B, T):
    """``C[c0 + j, c0 + k] += sum_r W[r] X[i0 + r, j] X[i0 + r, k]`` over ``r < m``, for
    ``k <= j < p`` (``p = X.shape[1]``): the lower triangle of ``X_c' diag(W) X_c`` for the
    chunk ``X_c`` of rows ``i0 .. i0 + m``, weights of any sign.

    The chunk is copied into ``B`` (at least ``(m, padded_width(p))``, zero beyond column
    ``p``: :func:`aligned_zeros`) and summed into ``T`` (``(pp, pp)``, ``pp =
    B.shape[1]``), eight rows at a time by :func:`syrk8`, then ``T``'s triangle is added to
    ``C``.  The order of every sum is fixed; the result is the same on every run.
    """
    p = X.shape[1]
    for r in range(m):
        x = X[i0 + r]
        b = B[r]
        for j in range(p):
            b[j] = x[j]
    T[:, :] = 0.0
    r = 0
    while r + LANES <= m:
        syrk8(T, B, W, r, p)
        r += LANES
    while r < m:
        b = B[r]
        w = W[r]
        for j in range(p):
            c = w * b[j]
            t = T[j]
            for k in range(j + 1):
                t[k] += c * b[k]
        r += 1
    for j in range(p):
        t = T[j]
        for k in range(j + 1):
            C[c0 + j, c0 + k] += t[k]
