"""Reference implementations written with plain loops, for checking module 09."""
import numpy as np
import pytest


def naive_conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
    """Convolution (cross-correlation, as in PyTorch) by looping over every output value."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    n, c, h, w = x.shape
    out_c, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    padded[:, :, ph:ph + h, pw:pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, out_c, ho, wo))
    for b in range(n):
        for o in range(out_c):
            for i in range(ho):
                for j in range(wo):
                    window = padded[b, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[b, o, i, j] = np.sum(window * weight[o])
            if bias is not None:
                out[b, o] += bias[o]
    return out


def naive_pool2d(x, kernel, stride, reduce):
    """Pooling by looping over every output value; reduce is np.max or np.mean."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    out[b, ch, i, j] = reduce(x[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw])
    return out


@pytest.fixture
def reference():
    """reference.conv2d(...) and reference.pool2d(...): the loop implementations above."""
    class Reference:
        conv2d = staticmethod(naive_conv2d)
        pool2d = staticmethod(naive_pool2d)
    return Reference
