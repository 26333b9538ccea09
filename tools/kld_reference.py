#!/usr/bin/env python3
"""Independent numpy reference for @q/calib statistics tests.

Written from the spec text (shared/specs/sophgo.md §2.2-§2.4, §2.9), not from the TypeScript:
  - KLD threshold of a histogram (§2.3), with the float32 arithmetic of calibration_math.so
    (P, Q, running sums and KL values float32, logs float64), and a float64 variant;
  - the |x| histogram merged across samples (§2.2), with numpy 1.x float32 data semantics;
  - percentile9999 / OCTAV (use_mse) / ACIQ / kurtosis / MovingAverageMinMax values (§2.4, §2.9).

usage: kld_reference.py SPEC.json DATA.bin  -> JSON on stdout
SPEC: {"kld": [{"hist": [...], "width": w, "dst": 128}, ...],
       "sets": [{"lengths": [n1, n2, ...], "offset": elements_before, "bins": 2048,
                 "N": planned_samples, "p": percentile, "bits": 8}, ...]}
DATA: float32 little-endian values of every set's samples, back to back.
"""
import json
import math
import sys

import numpy as np

F32 = np.float32


def f32(x):
    return float(F32(x))


# ----------------------------------------------------------------------------------------------
# §2.3 KLD

def kld_reference(hist, width, dst, single=True):
    """Returns (threshold, m*). single=True: float32 arithmetic as the C library; False: float64."""
    h = [int(v) for v in hist]
    pad = (-len(h)) % dst
    h = h + [0] * pad
    n = len(h)
    count = sum(h)
    rnd = f32 if single else float
    hf = np.array(h, dtype=np.float32 if single else np.float64)
    cf = rnd(count)
    kls = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(dst, n + 1, dst):
            # P: bins below i-1 as they are, everything from i-1 on summed into bin i-1
            tail = np.cumsum(hf[i - 1:], dtype=hf.dtype)[-1]   # sequential running sum
            p = [rnd(v) for v in hf[:i - 1]] + [rnd(tail)]
            p = [rnd(v / cf) for v in p]          # float32 division when single
            s = rnd(np.cumsum(hf[:i], dtype=hf.dtype)[-1])
            e = i // dst
            groups = hf[:i].reshape(dst, e)
            q = [0.0] * i
            for g in range(dst):
                sb = rnd(np.cumsum(groups[g], dtype=hf.dtype)[-1])
                pc = sum(1 for v in h[g * e:(g + 1) * e] if v > 0)
                pc = 1 if pc == 0 else pc
                if single:
                    qb = float((F32(sb) / F32(pc)) / F32(s))
                else:
                    qb = sb / pc / s if s != 0 else float("nan")
                for j in range(g * e, (g + 1) * e):
                    q[j] = qb if h[j] != 0 else 0.0
            kl = 0.0
            for j in range(i):
                term = p[j] * (math.log10(p[j] + 1e-30) - math.log10(q[j] + 1e-30))
                kl = rnd(kl + term)
            kls.append(kl)
    best = 0
    cur = kls[0]
    for m in range(1, len(kls)):
        if cur > kls[m]:
            cur = kls[m]
            best = m
    if single:
        th = float(F32(F32(F32(width) * F32(best + 1)) * F32(dst)))
    else:
        th = width * (best + 1) * dst
    return th, best


# ----------------------------------------------------------------------------------------------
# §2.2 histogram of one sample and the merge across samples

def sample_hist(x, th, nbins):
    """|x| histogram: zeros dropped, width = th/(n-1), index floor(|x|/width + 0.5) in float32."""
    t = np.abs(x)
    t = t[t != 0]
    width = th / (nbins - 1)                  # numpy scalar math: float64
    counts = np.zeros(nbins, dtype=np.int64)
    if t.size:
        idx = np.floor(t / F32(width) + F32(0.5)).astype(np.int64)   # float32 array math
        idx = idx[idx <= nbins - 1]
        counts += np.bincount(idx, minlength=nbins)[:nbins]
    return counts, width


def merged_histogram(samples, bins):
    mn = None
    mx = None
    hist = None
    th = None
    width = None
    restarts = 0
    for x in samples:
        smin, smax = x.min(), x.max()                 # np.float32
        mn = smin if mn is None else min(mn, smin)
        mx = smax if mx is None else max(mx, smax)
        absmax = max(abs(mn), abs(mx))                # np.float32
        if hist is None or th == 0:
            hist, width = sample_hist(x, absmax, bins)
            th = absmax
        elif absmax <= th:
            h, _ = sample_hist(x, th, len(hist))
            hist = hist + h
        else:
            n_old = len(hist)
            step = th / n_old                         # float64 (numpy 1.x scalar promotion)
            extra = int((absmax - th) // step + 1)    # absmax - th: float32 while th is float32
            n_new = n_old + extra
            if n_new > 8000000:
                restarts += 1
                hist, width = sample_hist(x, absmax, bins)
                th = absmax
                continue
            th = extra * step + th                    # float64 from here on
            h, width = sample_hist(x, th, n_new)
            h[:n_old] += hist
            hist = h
    return hist, float(width), float(th), restarts, float(mn), float(mx)


# ----------------------------------------------------------------------------------------------
# §2.4 methods, §2.9 kurtosis

def percentile_values(samples, n_planned, p):
    size = samples[-1].size
    k = int(n_planned * size * (1 - p / 100)) + 1
    kept = []
    for x in samples:
        srt = np.sort(x.ravel())
        kept.append(srt[:k])
        kept.append(srt[-k:])
    allv = np.sort(np.concatenate(kept).astype(np.float64))
    top = allv[-k:]
    bottom = allv[:k][::-1]
    pos = (p / 100) * (n_planned * size - 1)
    r = pos - int(pos)
    if k == 1:
        return float(bottom[0]), float(top[0]), k
    return float(bottom[0] + r * (bottom[1] - bottom[0])), float(top[0] + r * (top[1] - top[0])), k


def abs_percentile(samples, n_planned, p):
    size = samples[-1].size
    k = int(n_planned * size * (1 - p / 100)) + 1
    allv = np.sort(np.concatenate([np.sort(np.abs(x.ravel()))[-k:] for x in samples]))   # float32
    pos = (p / 100) * (n_planned * size - 1)
    r = pos - int(pos)
    if k == 1:
        return float(allv[-1])
    top = allv[-k:]
    return float(top[0] + r * float(top[1] - top[0]))


def octav(x, bits):
    a = np.abs(x.ravel())                             # float32
    u = 4 if abs(float(x.min()) - 0) < 1e-6 else 1
    nz = np.count_nonzero(a)
    if nz == 0:
        return float("nan")
    s = a.sum(dtype=np.float64) / nz
    for _ in range(20):
        gt = a > s                                    # numpy compares in float32 here
        le = a <= s
        s_next = a[gt].sum(dtype=np.float64) / (4.0 ** (-bits) / (3 * u) * le.sum() + gt.sum())
        if abs(s_next - s) < 1e-6:
            break
        s = s_next
    return float(s)


def aciq_gauss_sigma(x):
    c = 0.5 * 0.35 * (1 + math.sqrt(math.pi * math.log(4)))
    return float(np.float32(x.max() - x.min())) * c / math.sqrt(2 * math.log(x.size))


def laplace_b(x):
    x64 = x.astype(np.float64)
    return float(np.mean(np.abs(x64 - x64.mean())))


def kurtosis(x):
    x64 = x.astype(np.float64)
    sd = x64.std()
    if sd == 0:
        return float("inf")
    return float(np.mean(((x64 - x64.mean()) / (sd + 1e-8)) ** 4))


def moving_average_observer(samples):
    """torch MovingAverageMinMaxObserver(averaging_constant=0.1), qint8 per-tensor affine."""
    lo = hi = None
    c = F32(0.1)
    for x in samples:
        a, b = F32(x.min()), F32(x.max())
        if lo is None:
            lo, hi = a, b
        else:
            lo = F32(lo + F32(c * F32(a - lo)))
            hi = F32(hi + F32(c * F32(b - hi)))
    min_neg = min(lo, F32(0))
    max_pos = max(hi, F32(0))
    scale = F32(F32(max_pos - min_neg) / F32(255))
    scale = max(scale, F32(np.finfo(np.float32).eps))
    zp = -128 - int(np.round(F32(min_neg / scale)))
    zp = min(max(zp, -128), 127)
    th = float(F32(scale * F32(max(zp + 128, 127 - zp))))
    return {"scale": float(scale), "zp": zp, "th": th,
            "min": float(F32(scale * F32(-128 - zp))), "max": float(F32(scale * F32(127 - zp)))}


def main():
    spec = json.load(open(sys.argv[1]))
    data = np.fromfile(sys.argv[2], dtype="<f4") if len(sys.argv) > 2 else np.zeros(0, np.float32)
    out = {"numpy": np.__version__, "kld": [], "sets": []}
    for item in spec.get("kld", []):
        th32, m32 = kld_reference(item["hist"], item["width"], item["dst"], True)
        th64, m64 = kld_reference(item["hist"], item["width"], item["dst"], False)
        out["kld"].append({"th": th32, "m": m32, "th64": th64, "m64": m64})
    for st in spec.get("sets", []):
        off = st["offset"]
        samples = []
        for n in st["lengths"]:
            samples.append(data[off:off + n].copy())
            off += n
        hist, width, th, restarts, mn, mx = merged_histogram(samples, st["bins"])
        res = {"hist": hist.tolist(), "width": width, "th": th, "restarts": restarts, "min": mn, "max": mx}
        N, p, bits = st["N"], st["p"], st["bits"]
        vmin, vmax, k = percentile_values(samples, N, p)
        res.update({"vmin": vmin, "vmax": vmax, "k": k,
                    "np_percentile": float(np.percentile(np.concatenate(samples).astype(np.float64), p)),
                    "abs_percentile": abs_percentile(samples, N, p)})
        res["mse"] = [octav(x, bits) for x in samples]
        res["gauss"] = [aciq_gauss_sigma(x) for x in samples]
        res["laplace"] = [laplace_b(x) for x in samples]
        res["kurtosis"] = [kurtosis(x) for x in samples]
        res["observer"] = moving_average_observer(samples)
        if st.get("kld", False):
            res["kld"] = kld_reference(hist, width, 128, True)[0]
        out["sets"].append(res)
    json.dump(out, sys.stdout, allow_nan=True)


if __name__ == "__main__":
    main()
