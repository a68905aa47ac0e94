"""Reference solutions of the Gram-form Lasso used by online dictionary learning.

    alpha = argmin 1/2 a'Ga - c'a + lam*|a|_1      (optionally a >= 0)

Solved exactly, without iterations, by enumerating every sign pattern s in {-1,0,+1}^K:
on the support S the optimum solves G_SS a_S = c_S - lam*s_S; the pattern is accepted when
the signs agree and every coordinate off S has |c_j - G_jS a_S| <= lam. For positive
definite G exactly one pattern passes. The cases are small random D'D, D'x pairs.

Run: /usr/bin/python3 test/reference/dict_reference.py > test/reference/dict_reference.json
"""
import itertools
import json

import numpy as np


def exact_lasso(G, c, lam, positive=False):
    K = len(c)
    choices = (0, 1) if positive else (-1, 0, 1)
    best = None
    for s in itertools.product(choices, repeat=K):
        s = np.array(s, dtype=float)
        S = np.flatnonzero(s)
        a = np.zeros(K)
        if len(S):
            a[S] = np.linalg.solve(G[np.ix_(S, S)], c[S] - lam * s[S])
            if np.any(np.sign(a[S]) != s[S]):
                continue
        g = c - G @ a
        off = np.setdiff1d(np.arange(K), S)
        if positive:
            ok = np.all(g[off] <= lam + 1e-12)
        else:
            ok = np.all(np.abs(g[off]) <= lam + 1e-12)
        if ok:
            if best is not None:
                raise RuntimeError("two patterns satisfy the optimality conditions")
            best = a
    return best


def main():
    rng = np.random.default_rng(20100101)
    cases = []
    for i in range(8):
        K = 6
        V = 40
        D = rng.standard_normal((V, K))
        D[:, 1] += 0.7 * D[:, 0]  # correlated atoms, as overlapping maps give
        D /= np.linalg.norm(D, axis=0)
        x = D @ (rng.standard_normal(K) * (rng.random(K) < 0.6)) * 3 + 0.3 * rng.standard_normal(V)
        G = D.T @ D
        c = D.T @ x
        lam = [0.1, 0.5, 1.0, 2.0, 0.1, 0.5, 0.2, 0.05][i]
        positive = i >= 6
        a = exact_lasso(G, c, lam, positive)
        cases.append({
            "k": K,
            "lambda": lam,
            "positive": positive,
            "gram": G.ravel().tolist(),
            "rhs": c.tolist(),
            "alpha": a.tolist(),
        })
    print(json.dumps({"generator": "test/reference/dict_reference.py", "cases": cases}))


if __name__ == "__main__":
    main()
