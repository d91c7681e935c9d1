"""Stand-in for BLIS's Python API (`blis.py`, an 18 MB extension) in the Lambda package.

thinc needs `import blis.py` to succeed (it creates NumpyOps at import time, and NumpyOps
refuses to exist without it), but spaCy's tokenizer, all the handler uses, never multiplies a
matrix. So optimize_requirements.py leaves the extension out and installs this file as
`blis/py.py`: `gemm`, the only function thinc calls, computed by NumPy; the rest raise.
blis.cy (the C API thinc's Cython code links against) stays in the package.
"""
import numpy


def gemm(A, B, out=None, trans1=False, trans2=False, alpha=1.0, beta=1.0):
    """out = alpha * op(A) @ op(B) + beta * out, as blis.py.gemm (a new array when out is None)."""
    product = numpy.matmul(A.T if trans1 else A, B.T if trans2 else B)
    if alpha != 1.0:
        product *= alpha
    if out is None:
        return product.astype(A.dtype, copy=False)
    if beta == 0.0:
        out[...] = product
    else:
        out *= beta
        out += product
    return out


def _missing(name):
    def function(*args, **kwargs):
        raise NotImplementedError(f"blis.py.{name} is not in the Lambda package (see deployment/plugins/blis_py.py)")

    function.__name__ = name
    return function


axpy, batch_axpy, dotv, einsum, gemv, ger = map(_missing, ("axpy", "batch_axpy", "dotv", "einsum", "gemv", "ger"))
