#!/usr/bin/python3
"""Self-checks of the NumPy reference (moduleformer_ref.py).

  /usr/bin/python3 tests/reference/check_ref.py

(a) stick-breaking weights of a query sum to 1 - prod(1 - beta)
(b) a hand-computed 1-layer, d = 2 model (closed-form logits)
(c) permuting expert order (experts + router rows) leaves logits unchanged
(d) log-space and literal product stick-breaking forms agree
(e) LoRA on the fly equals the checkpoint tensors edited by hand (PEFT orientation, every target
    kind), equals merge_loras(); a LoRA with B = 0 changes nothing; bad shapes / targets are refused
plus: causality (prefix logits), bf16 encode/decode, safetensors round trip, sharded == single.
"""

import math
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moduleformer_ref as ref  # noqa: E402


def _close(a, b, tol, what):
    err = float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))
    if not err <= tol:
        raise AssertionError("%s: max abs err %.3e > %.1e" % (what, err, tol))
    return err


def check_a_remainder():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 40):
        for scale in (0.5, 3.0, 20.0):
            l = rng.standard_normal(n) * scale
            beta = 1.0 / (1.0 + np.exp(-l))
            expect = 1.0 - np.prod(1.0 - beta)
            for form in ("log", "product"):
                a = ref.SB_FORMS[form](l)
                assert np.all(a >= 0)
                _close(a.sum(), expect, 1e-12, "(a) sum of weights, %s n=%d" % (form, n))
    # the newest key (the query itself) gets sigma(l_i), the one before sigma(l_{i-1})(1-sigma(l_i))
    a = ref.stick_breaking_log(np.array([0.3, -1.2, 2.0]))
    s = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    _close(a, [s(0.3) * (1 - s(-1.2)) * (1 - s(2.0)), s(-1.2) * (1 - s(2.0)), s(2.0)], 1e-15,
           "(a) explicit 3-key weights")
    print("(a) stick-breaking remainder: ok")


def check_d_forms_agree():
    rng = np.random.default_rng(2)
    worst = 0.0
    for n in (1, 3, 16, 64):
        for scale in (0.1, 1.0, 5.0, 30.0):
            l = rng.standard_normal(n) * scale
            worst = max(worst, _close(ref.stick_breaking_log(l), ref.stick_breaking_product(l), 1e-13,
                                      "(d) log vs product n=%d scale=%g" % (n, scale)))
    model = _random_model_only(seed=5)
    toks = [3, 17, 0, 99, 42, 42, 7, 150]
    worst = max(worst, _close(ref.forward(model, toks, sb="log"), ref.forward(model, toks, sb="product"),
                              1e-10, "(d) model logits log vs product"))
    print("(d) log-space vs product stick-breaking: ok (max diff %.1e)" % worst)


def check_b_hand():
    """1 layer, D = d = 2, V = 3.  LN weights 1 / bias 0.  Attention: 2 experts, k = 1, the
    router picks expert 0 with gate sigma(Phi(1)) (not renormalised to 1); Wq[0] = alpha*I,
    Wo[0] = I; expert 1 has huge weights and must never be used.  MLP: 1 expert (gate 1),
    W1 = W2 = I.  lm_head rows [1,0], [0,1], [1,1].  tokens 0,1,2 with wte rows [1,-1],
    [-1,1], [3,1]; every LN output is then a multiple of u = [1,-1]."""
    eps = 1e-5
    alpha = 2.0
    D = 2
    cfg = dict(n_layer=1, n_embd=D, vocab_size=3, att_hidden=D, n_head=1, k_att=1, k_mlp=1,
               tie_word_embeddings=False)
    I2 = np.eye(2)
    p = "transformer.h.0."
    t = {
        "transformer.wte.weight": np.array([[1.0, -1.0], [-1.0, 1.0], [3.0, 1.0]]),
        p + "ln_1.weight": np.ones(2), p + "ln_1.bias": np.zeros(2),
        p + "attn.q_proj.experts.weight": np.stack([alpha * I2, 100.0 * np.array([[1.0, 2.0], [3.0, -4.0]])]),
        p + "attn.q_proj.output_experts.weight": np.stack([I2, -50.0 * I2]),
        p + "attn.q_proj.gate.w_gate.0.weight": np.zeros((2, D)),
        p + "attn.q_proj.gate.w_gate.0.bias": np.array([1.0, 0.0]),
        p + "attn.q_proj.gate.w_gate.3.weight": np.array([[1.0, 0.0], [0.0, 0.0]]),
        p + "ln_2.weight": np.ones(2), p + "ln_2.bias": np.zeros(2),
        p + "mlpf.experts.weight": I2[None], p + "mlpf.output_experts.weight": I2[None],
        p + "mlpf.gate.w_gate.0.weight": np.ones((3, D)), p + "mlpf.gate.w_gate.0.bias": np.ones(3),
        p + "mlpf.gate.w_gate.3.weight": np.ones((1, 3)),
        "transformer.ln_f.weight": np.ones(2), "transformer.ln_f.bias": np.zeros(2),
        "lm_head.weight": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    }
    model = ref.Model(cfg, t)
    got = ref.forward(model, [0, 1, 2])

    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    gt = lambda x: 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))  # noqa: E731
    phi1 = 0.5 * (1.0 + math.erf(1.0 / math.sqrt(2.0)))      # gelu_erf(1) = Phi(1) = 0.8413...
    gamma = sig(phi1 - 0.0)                                  # softmax([phi1, 0])[0]
    c = 1.0 / math.sqrt(1.0 + eps)                           # LN of a*u+b*[1,1] with |a|=1
    lam = math.sqrt(2.0) * alpha * c * c                     # |l_ij| = alpha c^2 (u.u)/sqrt(2)
    sp, sm = sig(lam), sig(-lam)
    k = [sp,                                                 # query 0: a00 = s(l)
         sm * sm - sp,                                       # query 1: keys x1 = -cu, x0 = +cu
         sp - sm * sm + sp * sp * sm]                        # query 2: x2 = cu, x1 = -cu, x0 = cu
    a_wte = [1.0, -1.0, 1.0]
    expect = []
    for i in range(3):
        a = a_wte[i] + gamma * c * k[i]                      # h_i = a u + b [1,1]
        n = a / math.sqrt(a * a + eps)                       # LN2(h_i) = n u
        half = (2 * a + gt(n) - gt(-n)) / 2.0                # h + [gt(n), gt(-n)], half-difference
        r = half / math.sqrt(half * half + eps)              # ln_f = r u
        expect.append([r, -r, 0.0])
    err = _close(got, expect, 1e-12, "(b) hand-computed model")
    # sanity of the hand numbers themselves
    assert abs(phi1 - 0.8413447460685429) < 1e-15 and abs(gamma - 0.6987) < 1e-3
    print("(b) hand-computed d=2 model: ok (max diff %.1e, gate %.6f)" % (err, gamma))


def _random_model(seed, att=(4, 3), mlp=(6, 5), k_att=2, k_mlp=3, D=16, F=24, G=8, V=200):
    import make_golden
    c = dict(name="tmp", dtype="F32", torch_dtype="float32", n_embd=D, ffd_hidden=F, gating_size=G,
             att_experts=list(att), mlp_experts=list(mlp), k_att=k_att, k_mlp=k_mlp, vocab=V, shards=1)
    tensors = make_golden.make_tensors(c, np.random.default_rng(seed))
    return ref.Model(make_golden.make_config(c), {n: a for n, a, _ in tensors}), c, tensors


def _random_model_only(seed):
    return _random_model(seed)[0]


def check_c_permutation():
    model, c, tensors = _random_model(seed=7)
    toks = [5, 6, 7, 199, 0, 13, 13, 88, 120, 2, 64]
    base = ref.forward(model, toks)
    t = {n: a for n, a, _ in tensors}
    rng = np.random.default_rng(8)
    for i in range(len(c["att_experts"])):
        p = "transformer.h.%d." % i
        pa = rng.permutation(c["att_experts"][i])
        pm = rng.permutation(c["mlp_experts"][i])
        for n in ("attn.q_proj.experts.weight", "attn.q_proj.output_experts.weight",
                  "attn.q_proj.gate.w_gate.3.weight"):
            t[p + n] = t[p + n][pa]
        for n in ("mlpf.experts.weight", "mlpf.output_experts.weight", "mlpf.gate.w_gate.3.weight"):
            t[p + n] = t[p + n][pm]
    perm = ref.forward(ref.Model(model.config, t), toks)
    err = _close(base, perm, 1e-10, "(c) expert permutation")
    # and a permutation of only the experts (not the router rows) must change the result
    t2 = dict(t)
    t2["transformer.h.0.mlpf.experts.weight"] = t["transformer.h.0.mlpf.experts.weight"][::-1]
    assert np.max(np.abs(ref.forward(ref.Model(model.config, t2), toks) - base)) > 1e-3
    print("(c) expert permutation invariance: ok (max diff %.1e)" % err)


def check_causality():
    model = _random_model_only(seed=9)
    toks = [1, 50, 51, 52, 199, 3, 3, 3, 10]
    full = ref.forward(model, toks)
    for n in (1, 4, 8):
        _close(ref.forward(model, toks[:n]), full[:n], 1e-12, "causality prefix %d" % n)
    print("causality (prefix logits equal): ok")


def check_io():
    # bf16 bit patterns
    assert ref.f32_to_bf16_bits(np.array([1.0], np.float32))[0] == 0x3F80
    assert ref.f32_to_bf16_bits(np.array([-2.0], np.float32))[0] == 0xC000
    # 1 + 2^-8 is exactly half-way between bf16 1.0 and 1+2^-7: ties to even -> 1.0
    assert ref.f32_to_bf16_bits(np.array([1.0 + 2 ** -8], np.float32))[0] == 0x3F80
    assert ref.f32_to_bf16_bits(np.array([1.0 + 3 * 2 ** -8], np.float32))[0] == 0x3F82
    assert ref.bf16_bits_to_f32(np.array([0x3FC0], np.uint16))[0] == 1.5
    import make_golden
    with tempfile.TemporaryDirectory() as td:
        for dt in ("BF16", "F16", "F32"):
            c = dict(name="io", dtype=dt, torch_dtype="x", n_embd=8, ffd_hidden=12, gating_size=4,
                     att_experts=[3, 2], mlp_experts=[4, 3], k_att=1, k_mlp=2, vocab=20, shards=1)
            tensors = make_golden.make_tensors(c, np.random.default_rng(3))
            d1, d2 = os.path.join(td, dt + "1"), os.path.join(td, dt + "2")
            os.makedirs(d1)
            os.makedirs(d2)
            make_golden.write_checkpoint(d1, c, tensors)
            make_golden.write_checkpoint(d2, dict(c, shards=2), tensors)
            t1 = ref.load_checkpoint_tensors(d1)
            t2 = ref.load_checkpoint_tensors(d2)
            assert sorted(t1) == sorted(t2)
            assert not any(n.endswith(("attn.mask", "attn.cum_weight")) for n in t1)
            for n, a, _ in tensors:
                if n.endswith(("attn.mask", "attn.cum_weight")):
                    continue
                assert np.array_equal(t1[n], t2[n])
                tol = {"F32": 1e-6, "F16": 2e-3, "BF16": 8e-3}[dt] * max(1.0, float(np.max(np.abs(a))))
                _close(t1[n], a, tol, "%s round trip %s" % (dt, n))
            m1, m2 = ref.Model.from_dir(d1), ref.Model.from_dir(d2)
            assert [L.E_att for L in m1.layers] == [3, 2] and [L.E_mlp for L in m1.layers] == [4, 3]
            _close(ref.forward(m1, [1, 2, 3]), ref.forward(m2, [1, 2, 3]), 0.0, "sharded == single")
    print("safetensors / bf16 / f16 / sharded loading: ok")


def check_e_lora():
    model, c, tensors = _random_model(seed=11)
    toks = [4, 8, 15, 16, 23, 42, 199, 0]
    base = ref.forward(model, toks)
    rng = np.random.default_rng(12)
    D, F, V = c["n_embd"], c["ffd_hidden"], c["vocab"]
    # target, in, out, checkpoint tensor, expert index (None: lm_head, stored [out, in])
    specs = [("L0.attn.E1.wq", D, D, "transformer.h.0.attn.q_proj.experts.weight", 1),
             ("L1.attn.E2.wo", D, D, "transformer.h.1.attn.q_proj.output_experts.weight", 2),
             ("L0.mlp.E3.w1", D, F, "transformer.h.0.mlpf.experts.weight", 3),
             ("L1.mlp.E0.w2", F, D, "transformer.h.1.mlpf.output_experts.weight", 0),
             ("lm_head.weight", D, V, "lm_head.weight", None)]
    t = {n: a.copy() for n, a, _ in tensors}
    fly = ref.Model(model.config, {n: a for n, a, _ in tensors})
    for target, n_in, n_out, name, e in specs:
        r, alpha, scale = 3, 6.0, 0.8
        a = rng.standard_normal((r, n_in)) * 0.3
        b = rng.standard_normal((n_out, r)) * 0.3
        fly.add_lora(target, a, b, alpha, scale)
        delta = scale * alpha / r * (b @ a)  # [out, in] (PEFT)
        if e is None:
            t[name] = t[name] + delta
        else:
            t[name][e] += delta.T                # experts are stored [in, out]
    got = ref.forward(fly, toks)
    assert np.max(np.abs(got - base)) > 1e-1, "(e) the LoRAs must change the logits"
    err = _close(got, ref.forward(ref.Model(model.config, t), toks), 1e-10, "(e) LoRA vs edited checkpoint")
    _close(got, ref.forward(ref.merge_loras(fly), toks), 1e-10, "(e) LoRA vs merge_loras")
    zero = ref.Model(model.config, {n: a for n, a, _ in tensors})
    zero.add_lora("L0.mlp.E3.w1", rng.standard_normal((2, D)), np.zeros((F, 2)), 4.0, 1.0)
    _close(ref.forward(zero, toks), base, 0.0, "(e) B = 0 changes nothing")
    for target, a, b in (("L0.mlp.E3.w1", np.zeros((2, D + 1)), np.zeros((F, 2))),
                         ("L0.mlp.E3.w1", np.zeros((2, D)), np.zeros((F, 3))),
                         ("L0.mlp.E3.w3", np.zeros((2, D)), np.zeros((F, 2))),
                         ("L2.mlp.E0.w1", np.zeros((2, D)), np.zeros((F, 2))),
                         ("L0.mlp.E9.w1", np.zeros((2, D)), np.zeros((F, 2)))):
        try:
            zero.add_lora(target, a, b, 1.0, 1.0)
        except ValueError:
            continue
        raise AssertionError("(e) add_lora accepted %s a %s b %s" % (target, a.shape, b.shape))
    print("(e) LoRA on the fly == edited checkpoint == merged: ok (max diff %.1e)" % err)


def run_all():
    check_a_remainder()
    check_b_hand()
    check_c_permutation()
    check_d_forms_agree()
    check_causality()
    check_io()
    check_e_lora()
    print("all reference self-checks passed")


if __name__ == "__main__":
    run_all()
