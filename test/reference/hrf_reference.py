"""Reference values for server/engine/hrf.ts and hrfConvolver.ts.

Re-implements SPM12's spm_hrf(RT, P, T) and spm_get_bf's microtime basis with
scipy.stats.gamma.pdf, and the batch convolution np.convolve(x, h)[:n] sampled at the
reference bin of each TR. Run with the Debian python (numpy 1.24, scipy 1.10):
    /usr/bin/python3 test/reference/hrf_reference.py
writes test/reference/hrf_reference.json next to this script.
"""
import json
import os

import numpy as np
from scipy.stats import gamma

P_DEFAULT = [6.0, 16.0, 1.0, 1.0, 6.0, 0.0, 32.0]


def spm_gpdf(u, h, l):
    # spm_Gpdf(x, h, l): shape h, rate l
    return gamma.pdf(u, h, scale=1.0 / l)


def spm_hrf(rt, p=None, T=16):
    p = list(P_DEFAULT if p is None else p)
    dt = rt / T
    u = np.arange(0, int(np.ceil(p[6] / dt)) + 1) - p[5] / dt
    hrf = spm_gpdf(u, p[0] / p[2], dt / p[2]) - spm_gpdf(u, p[1] / p[3], dt / p[3]) / p[4]
    hrf = hrf[np.arange(0, int(np.floor(p[6] / rt)) + 1) * T]
    return hrf / hrf.sum()


def spm_get_bf(tr, T=16, derivative=False):
    dt = tr / T
    bf = spm_hrf(dt, None, T)
    if not derivative:
        return [bf]
    p = list(P_DEFAULT)
    p[5] += 1.0
    d = (bf - spm_hrf(dt, p, T)) / 1.0
    # spm_orth: Gram-Schmidt of column 2 against column 1, no normalisation
    x = bf[:, None]
    d = d - (x @ (np.linalg.pinv(x) @ d[:, None]))[:, 0]
    return [bf, d]


def convolve_sampled(x, h, T, t0):
    """x: (n_micro, C). Returns (n_tr, C): np.convolve(x[:, c], h)[:n] at k*T + t0."""
    n = x.shape[0]
    full = np.stack([np.convolve(x[:, c], h)[:n] for c in range(x.shape[1])], axis=1)
    return full[np.arange(n // T) * T + t0]


def main():
    rng = np.random.default_rng(20260101)
    out = {
        "spm_hrf_tr1": spm_hrf(1.0).tolist(),
        "spm_hrf_tr2": spm_hrf(2.0).tolist(),
        "spm_hrf_tr072": spm_hrf(0.72).tolist(),
        "spm_hrf_tr2_onset15": spm_hrf(2.0, [6, 16, 1, 1, 6, 1.5, 32]).tolist(),
        "spm_hrf_tr1_shape": spm_hrf(1.0, [5.5, 15, 0.9, 1.1, 6, 0, 32]).tolist(),
    }
    k1 = spm_get_bf(1.0, 16, derivative=True)
    out["micro_tr1_t16"] = k1[0].tolist()
    out["micro_tr1_t16_deriv"] = k1[1].tolist()
    k2 = spm_get_bf(2.0, 16, derivative=True)
    out["micro_tr2_t16"] = k2[0].tolist()
    out["micro_tr2_t16_deriv"] = k2[1].tolist()
    out["micro_tr072_t8"] = spm_get_bf(0.72, 8)[0].tolist()

    # convolution reference: C channels, n_tr TRs of T microtime bins each
    T, C, n_tr = 16, 3, 45
    x = rng.standard_normal((n_tr * T, C)) + np.array([0.0, 2.0, -1.0])
    out["conv_T"] = T
    out["conv_channels"] = C
    out["conv_input"] = x.ravel().tolist()  # row-major: microtime sample, channel
    for name, t0 in (("mid", 8), ("start", 0), ("end", 15)):
        out["conv_tr1_" + name] = convolve_sampled(x, k1[0], T, t0).ravel().tolist()
    out["conv_tr1_mid_deriv"] = convolve_sampled(x, k1[1], T, 8).ravel().tolist()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "hrf_reference.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
