#!/usr/bin/python3
"""Independent NumPy reference implementation of the ModuleFormer / MoLM forward pass.

Written from /work/shared/spec/moduleformer.md only (sections 2, 3, 7); it is the oracle the
C++ runtime is tested against.  Everything is computed in float64, token by token, with
deliberately naive loops (no caching, no expert grouping, no fused stick-breaking scan).

LoRA plugins (issue #4) are applied on the fly: a projection y = x.W gets + m * (x.A^T).B^T with
A [r, in], B [out, r] (PEFT orientation, delta W[out, in] = alpha / r * B.A) and m = scale * alpha / r.
merge_loras() folds them into the weights instead (no rounding); make_golden.py checks both agree.

Usage (Debian python, needs only numpy):
  /usr/bin/python3 tests/reference/moduleformer_ref.py logits CKPT_DIR --tokens 1,2,3 --out logits.npy
  /usr/bin/python3 tests/reference/moduleformer_ref.py greedy CKPT_DIR --tokens 1,2,3 -n 12
  ... [--lora LORA_DIR]   (LORA_DIR holds lora.json + lora.safetensors, see load_lora_dir)
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

LN_EPS = 1e-5  # spec G10: PyTorch LayerNorm default, LayerNorm has weight and bias

# --------------------------------------------------------------------------------------
# safetensors reading / writing (format: u64 little-endian header length, JSON header,
# raw little-endian tensor bytes; data_offsets are relative to the end of the header)
# --------------------------------------------------------------------------------------

SKIP_SUFFIXES = ("attn.mask", "attn.cum_weight")  # dead buffers, spec G9

_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


def bf16_bits_to_f32(bits):
    """BF16 = the upper 16 bits of an IEEE float32."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bf16 bit pattern (finite inputs)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def read_safetensors(path, skip=SKIP_SUFFIXES):
    """Returns {name: float64 ndarray} (non-float dtypes are returned as-is)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if name.endswith(skip):
            continue
        dt = info["dtype"]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        buf = raw[base + b: base + e]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2")).astype(np.float64)
        elif dt in ("F32", "F16", "F64"):
            arr = np.frombuffer(buf, dtype=_NP_DTYPES[dt]).astype(np.float64)
        elif dt in _NP_DTYPES:
            arr = np.frombuffer(buf, dtype=_NP_DTYPES[dt]).copy()
        else:
            raise ValueError("unsupported safetensors dtype %s for %s" % (dt, name))
        n = int(np.prod(shape)) if shape else 1
        if arr.size != n:
            raise ValueError("size mismatch for %s" % name)
        out[name] = arr.reshape(shape)
    return out


def encode_tensor(arr, dtype):
    """Returns (bytes, safetensors dtype string) for an ndarray stored as `dtype`."""
    if dtype == "BF16":
        return f32_to_bf16_bits(arr).tobytes(), "BF16"
    if dtype == "F32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes(), "F32"
    if dtype == "F16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes(), "F16"
    if dtype == "I8":
        return np.ascontiguousarray(arr, dtype="i1").tobytes(), "I8"
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: list of (name, ndarray, dtype-string). Returns number of data bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, arr, dtype in tensors:
        data, dt = encode_tensor(arr, dtype)
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    return off


def load_checkpoint_tensors(ckpt_dir):
    single = os.path.join(ckpt_dir, "model.safetensors")
    index = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(wm.values())):
            part = read_safetensors(os.path.join(ckpt_dir, shard))
            for k, v in part.items():
                if wm.get(k) != shard:
                    raise ValueError("tensor %s found in %s but index says %s" % (k, shard, wm.get(k)))
                tensors[k] = v
        missing = [k for k in wm if k not in tensors and not k.endswith(SKIP_SUFFIXES)]
        if missing:
            raise ValueError("tensors listed in index but missing: %s" % missing[:5])
        return tensors
    raise FileNotFoundError("no model.safetensors or model.safetensors.index.json in " + ckpt_dir)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

class Layer:
    pass


class Model:
    """Holds float64 weights.  Build with Model.from_dir(path) or Model(config, tensors)."""

    def __init__(self, config, tensors):
        self.config = config
        assert config.get("n_head", 1) == 1, "reference supports n_head == 1 (MoLM)"
        D = int(config["n_embd"])
        self.D = D
        self.att_hidden = int(config.get("att_hidden", D))
        assert self.att_hidden == D, "K = V = LN1 output requires att_hidden == n_embd (spec 2.4)"
        self.k_att = int(config["k_att"])
        self.k_mlp = int(config["k_mlp"])
        self.eps = LN_EPS

        def get(name):
            if name in tensors:
                return tensors[name]
            raise KeyError("missing tensor " + name)

        self.wte = get("transformer.wte.weight")
        self.V = self.wte.shape[0]
        if "lm_head.weight" in tensors:
            self.lm_head = tensors["lm_head.weight"]
        elif config.get("tie_word_embeddings", False):
            self.lm_head = self.wte
        else:
            raise KeyError("missing lm_head.weight and tie_word_embeddings is false")
        self.lnf_w = get("transformer.ln_f.weight")
        self.lnf_b = get("transformer.ln_f.bias")
        self.layers = []
        for i in range(int(config["n_layer"])):
            p = "transformer.h.%d." % i
            L = Layer()
            L.ln1_w = get(p + "ln_1.weight")
            L.ln1_b = get(p + "ln_1.bias")
            L.wq = get(p + "attn.q_proj.experts.weight")            # [E_a, D, A]
            L.wo = get(p + "attn.q_proj.output_experts.weight")     # [E_a, A, D]
            L.ag_w1 = get(p + "attn.q_proj.gate.w_gate.0.weight")   # [G, D]
            L.ag_b1 = get(p + "attn.q_proj.gate.w_gate.0.bias")     # [G]
            L.ag_w2 = get(p + "attn.q_proj.gate.w_gate.3.weight")   # [E_a, G]
            L.ln2_w = get(p + "ln_2.weight")
            L.ln2_b = get(p + "ln_2.bias")
            L.w1 = get(p + "mlpf.experts.weight")                   # [E_m, D, F]
            L.w2 = get(p + "mlpf.output_experts.weight")            # [E_m, F, D]
            L.mg_w1 = get(p + "mlpf.gate.w_gate.0.weight")
            L.mg_b1 = get(p + "mlpf.gate.w_gate.0.bias")
            L.mg_w2 = get(p + "mlpf.gate.w_gate.3.weight")
            # per-layer expert counts come from the tensors (spec G16)
            L.E_att = L.wq.shape[0]
            L.E_mlp = L.w1.shape[0]
            assert L.wo.shape[0] == L.E_att and L.ag_w2.shape[0] == L.E_att
            assert L.w2.shape[0] == L.E_mlp and L.mg_w2.shape[0] == L.E_mlp
            assert self.k_att <= L.E_att and self.k_mlp <= L.E_mlp
            self.layers.append(L)

        self.loras = {}  # target -> [(A [r, in], B [out, r], multiplier)], see add_lora

    def _projection(self, target):
        """The weight a LoRA target names, and whether it is stored [in, out] (experts) or [out, in]."""
        if target == "lm_head.weight":
            return self.lm_head, False
        parts = target.split(".")
        if len(parts) != 4 or parts[0][:1] != "L" or parts[2][:1] != "E":
            raise ValueError("bad lora target " + target)
        li, e, t = int(parts[0][1:]), int(parts[2][1:]), parts[3]
        if not 0 <= li < len(self.layers):
            raise ValueError("lora target %s: no layer %d" % (target, li))
        L = self.layers[li]
        names = {"attn": ("wq", "wo"), "mlp": ("w1", "w2")}[parts[1]]
        if t not in names:
            raise ValueError("lora target %s: unknown projection" % target)
        w = getattr(L, t)
        if not 0 <= e < w.shape[0]:
            raise ValueError("lora target %s: no expert %d" % (target, e))
        return w[e], True

    def add_lora(self, target, a, b, alpha, scale):
        """Attach a LoRA on the fly; several on one target sum."""
        w, in_out = self._projection(target)
        n_in, n_out = w.shape if in_out else w.shape[::-1]
        r = a.shape[0]
        if a.shape != (r, n_in) or b.shape != (n_out, r) or r < 1:
            raise ValueError("lora %s: a %s, b %s do not fit in=%d out=%d" % (target, a.shape, b.shape, n_in, n_out))
        self.loras.setdefault(target, []).append((a, b, scale * float(alpha) / r))

    def lora_term(self, target, x):
        """Sum over the target's LoRAs of m * (x.A^T).B^T; 0 without any.  x [in] or [T, in]."""
        out = 0.0
        for a, b, m in self.loras.get(target, ()):
            out = out + m * ((x @ a.T) @ b.T)
        return out

    @staticmethod
    def from_dir(ckpt_dir):
        with open(os.path.join(ckpt_dir, "config.json")) as f:
            config = json.load(f)
        return Model(config, load_checkpoint_tensors(ckpt_dir))


def load_lora_dir(lora_dir):
    """Reads lora.json {"base": case, "loras": [{"target": T, "scale": s}, ...]} and lora.safetensors
    with tensors "<T>.a" [r, in], "<T>.b" [out, r], "<T>.alpha" [1].  Returns (json, [(T, a, b, alpha, s)])."""
    with open(os.path.join(lora_dir, "lora.json")) as f:
        spec = json.load(f)
    tensors = read_safetensors(os.path.join(lora_dir, "lora.safetensors"))
    loras = []
    for entry in spec["loras"]:
        t = entry["target"]
        loras.append((t, tensors[t + ".a"], tensors[t + ".b"], float(tensors[t + ".alpha"].reshape(-1)[0]),
                      float(entry["scale"])))
    return spec, loras


def merge_loras(model):
    """A copy of model with every LoRA folded into its weight in float64 (W + m * delta, W's orientation)."""
    import copy
    merged = copy.deepcopy(model)
    for target, entries in model.loras.items():
        w, in_out = merged._projection(target)  # a view into merged's arrays
        for a, b, m in entries:
            delta = m * (b @ a)                  # [out, in]
            w += delta.T if in_out else delta
    merged.loras = {}
    return merged


def delete_experts(model, att_removed, mlp_removed, k_att=None, k_mlp=None):
    """A copy of model with experts deleted, as from a checkpoint: per layer, the listed expert ids'
    slices of the expert weights and rows of the router's output layer are removed and the survivors
    keep their order (renumbered 0..).  This is the definition a submodel's removal must match: a
    removed expert's logit leaves the softmax.  k_att / k_mlp optionally change top-k."""
    import copy
    pruned = copy.deepcopy(model)
    for L, ra, rm in zip(pruned.layers, att_removed, mlp_removed):
        ka = [e for e in range(L.E_att) if e not in set(ra)]
        km = [e for e in range(L.E_mlp) if e not in set(rm)]
        L.wq, L.wo, L.ag_w2 = L.wq[ka], L.wo[ka], L.ag_w2[ka]
        L.w1, L.w2, L.mg_w2 = L.w1[km], L.w2[km], L.mg_w2[km]
        L.E_att, L.E_mlp = len(ka), len(km)
    if k_att is not None:
        pruned.k_att = k_att
    if k_mlp is not None:
        pruned.k_mlp = k_mlp
    for L in pruned.layers:
        assert 1 <= pruned.k_att <= L.E_att and 1 <= pruned.k_mlp <= L.E_mlp
    return pruned


# --------------------------------------------------------------------------------------
# Elementary functions
# --------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps=LN_EPS):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased variance (PyTorch)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_erf(x):
    """Exact GELU (nn.GELU default), used in the routers."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    """'gelu_new', used in the MLP experts."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def log_sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def softmax(z):
    z = z - np.max(z)
    e = np.exp(z)
    return e / e.sum()


def top_k_desc(p, k):
    """Indices of the k largest entries, descending; ties go to the lower index."""
    order = sorted(range(len(p)), key=lambda e: (-p[e], e))
    return order[:k]


def route(x, w1, b1, w2, k):
    """Router of spec 2.3 for one token vector x.  Returns (gates, experts, full probs)."""
    hidden = gelu_erf(w1 @ x + b1)
    p = softmax(w2 @ hidden)            # softmax over ALL experts
    idx = top_k_desc(p, k)
    gates = [float(p[e]) for e in idx]  # NOT renormalised
    return gates, idx, p


# --------------------------------------------------------------------------------------
# Stick-breaking attention weights for one query over its allowed keys 0..i
# (logits[j] for j = 0..i, the last entry is the query token itself)
# --------------------------------------------------------------------------------------

def stick_breaking_product(logits):
    """Literal form: a_j = sigma(l_j) * prod_{j<m<=i} (1 - sigma(l_m))."""
    n = len(logits)
    beta = sigmoid(logits)
    a = np.zeros(n)
    for j in range(n):
        w = beta[j]
        for m in range(j + 1, n):
            w *= (1.0 - beta[m])
        a[j] = w
    return a


def stick_breaking_log(logits):
    """Log-space form: a_j = exp(log sigma(l_j) + R_j), R_j = sum_{m>j} log sigma(-l_m)."""
    n = len(logits)
    lneg = log_sigmoid(-np.asarray(logits, dtype=np.float64))
    R = np.zeros(n)
    acc = 0.0
    for j in range(n - 1, -1, -1):  # exclusive suffix sum, newest key first
        R[j] = acc
        acc += lneg[j]
    return np.exp(log_sigmoid(logits) + R)


SB_FORMS = {"log": stick_breaking_log, "product": stick_breaking_product}


# --------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------

def forward(model, tokens, sb="log", trace=None):
    """Full (no cache) forward of one sequence.  Returns float64 logits [T, V].

    If `trace` is a list, per layer a dict with the router probabilities and choices is
    appended (used by make_golden.py to measure routing near-ties)."""
    tokens = [int(t) for t in tokens]
    T = len(tokens)
    assert T >= 1
    for t in tokens:
        if not (0 <= t < model.V):
            raise ValueError("token id %d out of range" % t)
    sbf = SB_FORMS[sb]
    D = model.D
    inv_sqrt_d = 1.0 / math.sqrt(model.att_hidden)  # n_head = 1, d = att_hidden
    h = model.wte[tokens].astype(np.float64)         # no positional encoding
    for li, L in enumerate(model.layers):
        rec = {"att_p": [], "att_idx": [], "mlp_p": [], "mlp_idx": []}
        # ---- mixture of stick-breaking attention heads ----
        xa = layer_norm(h, L.ln1_w, L.ln1_b, model.eps)   # K = V = xa
        y = np.zeros((T, D))
        for i in range(T):
            gates, idx, p = route(xa[i], L.ag_w1, L.ag_b1, L.ag_w2, model.k_att)
            rec["att_p"].append(p)
            rec["att_idx"].append(idx)
            for g, e in zip(gates, idx):
                name = "L%d.attn.E%d." % (li, e)
                q = xa[i] @ L.wq[e] + model.lora_term(name + "wq", xa[i])  # [in,out], no transpose
                logits = np.array([q @ xa[j] for j in range(i + 1)]) * inv_sqrt_d
                a = sbf(logits)                              # remainder dropped
                o = np.zeros(D)
                for j in range(i + 1):
                    o += a[j] * xa[j]
                y[i] += g * (o @ L.wo[e] + model.lora_term(name + "wo", o))
        h = h + y
        # ---- mixture of MLP experts ----
        xm = layer_norm(h, L.ln2_w, L.ln2_b, model.eps)
        y = np.zeros((T, D))
        for i in range(T):
            gates, idx, p = route(xm[i], L.mg_w1, L.mg_b1, L.mg_w2, model.k_mlp)
            rec["mlp_p"].append(p)
            rec["mlp_idx"].append(idx)
            for g, e in zip(gates, idx):
                name = "L%d.mlp.E%d." % (li, e)
                hid = gelu_tanh(xm[i] @ L.w1[e] + model.lora_term(name + "w1", xm[i]))
                y[i] += g * (hid @ L.w2[e] + model.lora_term(name + "w2", hid))
        h = h + y
        if trace is not None:
            trace.append(rec)
    hf = layer_norm(h, model.lnf_w, model.lnf_b, model.eps)
    return hf @ model.lm_head.T + model.lora_term("lm_head.weight", hf)


def greedy(model, tokens, n, sb="log", return_gaps=False):
    """Greedy decoding by full recomputation each step; argmax ties go to the lower id.
    Does not stop at eos.  Returns the n new token ids (and, optionally, top1-top2 gaps)."""
    seq = [int(t) for t in tokens]
    new, gaps = [], []
    for _ in range(n):
        last = forward(model, seq, sb=sb)[-1]
        nxt = int(np.argmax(last))  # first maximum = lowest id
        srt = np.sort(last)
        gaps.append(float(srt[-1] - srt[-2]))
        new.append(nxt)
        seq.append(nxt)
    return (new, gaps) if return_gaps else new


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _parse_tokens(s):
    return [int(t) for t in s.replace(" ", "").split(",") if t != ""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("logits", help="write float32 .npy logits [T, V]")
    a.add_argument("ckpt")
    a.add_argument("--tokens", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--sb", choices=sorted(SB_FORMS), default="log")
    g = sub.add_parser("greedy", help="print greedy continuation ids")
    g.add_argument("ckpt")
    g.add_argument("--tokens", required=True)
    g.add_argument("-n", type=int, required=True)
    g.add_argument("--sb", choices=sorted(SB_FORMS), default="log")
    for p in (a, g):
        p.add_argument("--lora", help="directory with lora.json + lora.safetensors to apply on the fly")
    args = ap.parse_args(argv)
    model = Model.from_dir(args.ckpt)
    if args.lora:
        for target, la, lb, alpha, scale in load_lora_dir(args.lora)[1]:
            model.add_lora(target, la, lb, alpha, scale)
    toks = _parse_tokens(args.tokens)
    if args.cmd == "logits":
        np.save(args.out, forward(model, toks, sb=args.sb).astype(np.float32))
    else:
        print(" ".join(str(t) for t in greedy(model, toks, args.n, sb=args.sb)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
