#!/usr/bin/python3
"""Create tiny random ModuleFormer checkpoints (HF layout) and golden outputs.

  /usr/bin/python3 tests/reference/make_golden.py --out tests/reference/data

Deterministic: every case starts from a fixed base seed; if the resulting model has a
routing near-tie (k-th vs (k+1)-th router probability closer than MIN_ROUTER_GAP), a
greedy near-tie (top-1 vs top-2 logit closer than MIN_GREEDY_GAP) or an expert that is never
selected on the golden tokens, the seed is incremented and the case regenerated.  The
accepted seed and the measured gaps are written to <case>/meta.json.

LoRA cases (LORA_CASES) reuse a base case's checkpoint and prompts and add random LoRA plugins on
named projections (lora.json + lora.safetensors); their seed is bumped the same way, and also until
every targeted expert is selected at least once on the golden tokens.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moduleformer_ref as ref  # noqa: E402

MIN_ROUTER_GAP = 2e-4
MIN_GREEDY_GAP = 5e-3
N_GREEDY = 12
PROMPT_LENGTHS = (5, 11, 17)
DEAD_S = 16  # size of the dead attn.mask / attn.cum_weight buffers

CASES = [
    dict(name="bf16", seed=1000, dtype="BF16", torch_dtype="bfloat16", n_embd=64, ffd_hidden=96,
         gating_size=32, att_experts=[4, 4], mlp_experts=[8, 8], k_att=2, k_mlp=2, vocab=300,
         shards=1),
    dict(name="f32", seed=2000, dtype="F32", torch_dtype="float32", n_embd=64, ffd_hidden=96,
         gating_size=32, att_experts=[4, 4], mlp_experts=[8, 8], k_att=2, k_mlp=2, vocab=300,
         shards=1),
    dict(name="ragged", seed=3000, dtype="F16", torch_dtype="float16", n_embd=64, ffd_hidden=96,
         gating_size=32, att_experts=[4, 3, 5], mlp_experts=[8, 6, 7], k_att=2, k_mlp=3, vocab=300,
         shards=2),
]

# name, base case, seed, and per LoRA: target, rank, dtype of a/b, alpha, scale.
LORA_CASES = [
    dict(name="lora", base="f32", seed=5000, loras=[
        ("L0.attn.E1.wq", 4, "BF16", 8.0, 1.0),
        ("L1.attn.E3.wo", 2, "F32", 4.0, 0.5),
        ("L0.mlp.E5.w1", 8, "F16", 16.0, 1.0),
        ("L1.mlp.E2.w2", 4, "F32", 8.0, 2.0),
        ("L1.mlp.E6.w1", 3, "BF16", 3.0, -1.0),
        ("lm_head.weight", 8, "F32", 16.0, 1.0),
    ]),
]


# Submodel cases: a base case's checkpoint with experts removed (per-layer lists of ids) and top-k
# changed. Golden logits come from the base model with those experts deleted (delete_experts); the
# C++ side runs the base checkpoint with the removal in its config. The removal sets are fixed (no
# seed to bump), so the routing gaps are asserted instead.
PRUNED_CASES = [
    dict(name="pruned", base="ragged", att_removed=[[1], [], [0, 3]], mlp_removed=[[2, 5], [0], [6]],
         k_att=2, k_mlp=2),
]


def make_config(c):
    n_layer = len(c["att_experts"])
    V = c["vocab"]
    return {
        "model_type": "moduleformer",
        "architectures": ["ModuleFormerForCausalLM"],
        "n_layer": n_layer,
        "n_embd": c["n_embd"],
        "vocab_size": V,
        # per-layer counts may differ (ragged case); loaders must read tensor dim 0.
        "n_att_experts": max(c["att_experts"]),
        "k_att": c["k_att"],
        "n_mlp_experts": max(c["mlp_experts"]),
        "k_mlp": c["k_mlp"],
        "att_hidden": c["n_embd"],
        "n_head": 1,
        "ffd_hidden": c["ffd_hidden"],
        "gating_size": c["gating_size"],
        "gate_type": "mlp",
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": False,
        "bos_token_id": V - 1,
        "eos_token_id": V - 1,
        "block_size": 512,
        "history_length": 512,
        "n_ctx": 512 * n_layer,
        "sample_topk": 0,
        "aux_loss_type": "mi",
        "aux_loss_weight": 0,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "moe_pdrop": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": c["torch_dtype"],
    }


def make_tensors(c, rng):
    """Returns an ordered list of (name, float64 array, dtype)."""
    D, F, G, V = c["n_embd"], c["ffd_hidden"], c["gating_size"], c["vocab"]
    dt = c["dtype"]
    out = []

    def normal(shape, std):
        return rng.standard_normal(shape) * std

    out.append(("transformer.wte.weight", normal((V, D), 1.0), dt))
    for i, (Ea, Em) in enumerate(zip(c["att_experts"], c["mlp_experts"])):
        p = "transformer.h.%d." % i
        out += [
            (p + "ln_1.weight", 1.0 + normal((D,), 0.1), dt),
            (p + "ln_1.bias", normal((D,), 0.1), dt),
            (p + "attn.q_proj.experts.weight", normal((Ea, D, D), D ** -0.5), dt),
            (p + "attn.q_proj.output_experts.weight", normal((Ea, D, D), D ** -0.5), dt),
            (p + "attn.q_proj.gate.w_gate.0.weight", normal((G, D), D ** -0.5), dt),
            (p + "attn.q_proj.gate.w_gate.0.bias", normal((G,), 0.1), dt),
            (p + "attn.q_proj.gate.w_gate.3.weight", normal((Ea, G), G ** -0.5), dt),
            (p + "attn.mask", np.tril(np.ones((DEAD_S, DEAD_S))), "I8"),
            (p + "attn.cum_weight", np.tril(np.ones((DEAD_S, DEAD_S)), -1), dt),
            (p + "ln_2.weight", 1.0 + normal((D,), 0.1), dt),
            (p + "ln_2.bias", normal((D,), 0.1), dt),
            (p + "mlpf.experts.weight", normal((Em, D, F), D ** -0.5), dt),
            (p + "mlpf.output_experts.weight", normal((Em, F, D), F ** -0.5), dt),
            (p + "mlpf.gate.w_gate.0.weight", normal((G, D), D ** -0.5), dt),
            (p + "mlpf.gate.w_gate.0.bias", normal((G,), 0.1), dt),
            (p + "mlpf.gate.w_gate.3.weight", normal((Em, G), G ** -0.5), dt),
        ]
    out += [
        ("transformer.ln_f.weight", 1.0 + normal((D,), 0.1), dt),
        ("transformer.ln_f.bias", normal((D,), 0.1), dt),
        ("lm_head.weight", normal((V, D), D ** -0.5), dt),
    ]
    return out


def write_checkpoint(d, c, tensors):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(make_config(c), f, indent=2)
        f.write("\n")
    if c["shards"] == 1:
        ref.write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        return
    # split in the middle of the tensor list, so a layer straddles the two shards
    n = c["shards"]
    cut = [round(len(tensors) * s / n) for s in range(n + 1)]
    weight_map, total = {}, 0
    for s in range(n):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, n)
        part = tensors[cut[s]:cut[s + 1]]
        total += ref.write_safetensors(os.path.join(d, fname), part)
        for name, _, _ in part:
            weight_map[name] = fname
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def router_gaps(trace, k_att, k_mlp):
    """Min over layers/tokens of p_(k) - p_(k+1) (sorted descending), and expert usage."""
    best = (float("inf"), None)
    used = []
    for li, rec in enumerate(trace):
        ua, um = set(), set()
        for kind, k, u in (("att", k_att, ua), ("mlp", k_mlp, um)):
            for t, (p, idx) in enumerate(zip(rec[kind + "_p"], rec[kind + "_idx"])):
                u.update(idx)
                s = np.sort(p)[::-1]
                gap = float(s[k - 1] - s[k])
                if gap < best[0]:
                    best = (gap, {"layer": li, "router": kind, "position": t})
        used.append((ua, um))
    return best, used


def try_case(c, seed, d):
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    rng = np.random.default_rng(seed)
    tensors = make_tensors(c, rng)
    V = c["vocab"]
    prompts = []
    for pi, n in enumerate(PROMPT_LENGTHS):
        p = [int(t) for t in rng.integers(0, V - 1, size=n)]
        if pi == 0:
            p[0] = V - 1  # starts with bos
        prompts.append(p)
    write_checkpoint(d, c, tensors)
    model = ref.Model.from_dir(d)  # compute with exactly the (rounded) weights written

    greedy_res, min_ggap = [], float("inf")
    min_rgap, where, usage = float("inf"), None, None
    for pi, p in enumerate(prompts):
        new, gaps = ref.greedy(model, p, N_GREEDY, return_gaps=True)
        greedy_res.append({"prompt_index": pi, "n": N_GREEDY, "tokens": new})
        min_ggap = min(min_ggap, min(gaps))
        # every position whose routing matters: prompt + all generated tokens but the last
        trace = []
        ref.forward(model, p + new[:-1], trace=trace)
        (g, w), used = router_gaps(trace, c["k_att"], c["k_mlp"])
        if g < min_rgap:
            min_rgap, where = g, dict(w, prompt_index=pi)
        usage = used if usage is None else [(a | ua, m | um) for (a, m), (ua, um) in zip(usage, used)]
    all_used = all(len(a) == Ea and len(m) == Em
                   for (a, m), Ea, Em in zip(usage, c["att_experts"], c["mlp_experts"]))
    ok = min_rgap >= MIN_ROUTER_GAP and min_ggap >= MIN_GREEDY_GAP and all_used
    info = dict(min_router_gap=min_rgap, min_router_gap_at=where, min_greedy_logit_gap=min_ggap,
                all_experts_used=all_used)
    return ok, model, prompts, greedy_res, info


def build_case(c, out):
    d = os.path.join(out, c["name"])
    for attempt in range(200):
        seed = c["seed"] + attempt
        ok, model, prompts, greedy_res, info = try_case(c, seed, d)
        print("case %-7s seed %d: router gap %.3e, greedy gap %.3e, all experts used %s -> %s"
              % (c["name"], seed, info["min_router_gap"], info["min_greedy_logit_gap"],
                 info["all_experts_used"], "ok" if ok else "retry"))
        if ok:
            break
    else:
        raise RuntimeError("no acceptable seed for case " + c["name"])

    with open(os.path.join(d, "prompts.json"), "w") as f:
        json.dump({"prompts": prompts}, f)
        f.write("\n")
    for pi, p in enumerate(prompts):
        logits = ref.forward(model, p)
        logits_prod = ref.forward(model, p, sb="product")
        assert np.max(np.abs(logits - logits_prod)) < 1e-9, "log/product stick-breaking disagree"
        np.save(os.path.join(d, "logits_%d.npy" % pi), logits.astype(np.float32))
    with open(os.path.join(d, "greedy.json"), "w") as f:
        json.dump({"n": N_GREEDY, "greedy": greedy_res}, f)
        f.write("\n")
    meta = dict(case=c["name"], seed=seed, weight_dtype=c["dtype"],
                n_layer=len(c["att_experts"]), att_experts_per_layer=c["att_experts"],
                mlp_experts_per_layer=c["mlp_experts"], k_att=c["k_att"], k_mlp=c["k_mlp"],
                n_embd=c["n_embd"], ffd_hidden=c["ffd_hidden"], gating_size=c["gating_size"],
                vocab_size=c["vocab"], sharded=c["shards"] > 1, **info)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def lora_tensors(model, c, rng):
    """Random LoRA tensors for case c against model: [(name, array, dtype)], a ~ N(0, 1/in), b ~ N(0, 0.1^2)."""
    out = []
    for target, r, dt, alpha, _ in c["loras"]:
        w, in_out = model._projection(target)
        n_in, n_out = w.shape if in_out else w.shape[::-1]
        out += [(target + ".a", rng.standard_normal((r, n_in)) * n_in ** -0.5, dt),
                (target + ".b", rng.standard_normal((n_out, r)) * 0.1, dt),
                (target + ".alpha", np.array([alpha]), "F32")]
    return out


def try_lora_case(c, seed, d, base_dir, prompts):
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model = ref.Model.from_dir(base_dir)
    rng = np.random.default_rng(seed)
    ref.write_safetensors(os.path.join(d, "lora.safetensors"), lora_tensors(model, c, rng))
    spec = {"base": c["base"], "loras": [{"target": t, "scale": s} for t, _, _, _, s in c["loras"]]}
    with open(os.path.join(d, "lora.json"), "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    for target, a, b, alpha, scale in ref.load_lora_dir(d)[1]:  # the rounded values as written
        model.add_lora(target, a, b, alpha, scale)

    greedy_res, min_ggap = [], float("inf")
    min_rgap, where, hit = float("inf"), None, set()
    for pi, p in enumerate(prompts):
        new, gaps = ref.greedy(model, p, N_GREEDY, return_gaps=True)
        greedy_res.append({"prompt_index": pi, "n": N_GREEDY, "tokens": new})
        min_ggap = min(min_ggap, min(gaps))
        trace = []
        ref.forward(model, p + new[:-1], trace=trace)
        (g, w), _ = router_gaps(trace, model.k_att, model.k_mlp)
        if g < min_rgap:
            min_rgap, where = g, dict(w, prompt_index=pi)
        for li, rec in enumerate(trace):
            for kind in ("att", "mlp"):
                for idx in rec[kind + "_idx"]:
                    hit.update("L%d.%s.E%d." % (li, "attn" if kind == "att" else "mlp", e) for e in idx)
    targets_hit = all(t == "lm_head.weight" or t.rsplit(".", 1)[0] + "." in hit for t, *_ in c["loras"])
    ok = min_rgap >= MIN_ROUTER_GAP and min_ggap >= MIN_GREEDY_GAP and targets_hit
    info = dict(min_router_gap=min_rgap, min_router_gap_at=where, min_greedy_logit_gap=min_ggap,
                all_lora_targets_selected=targets_hit)
    return ok, model, greedy_res, info


def build_lora_case(c, out):
    d = os.path.join(out, c["name"])
    base_dir = os.path.join(out, c["base"])
    with open(os.path.join(base_dir, "prompts.json")) as f:
        prompts = json.load(f)["prompts"]
    for attempt in range(200):
        seed = c["seed"] + attempt
        ok, model, greedy_res, info = try_lora_case(c, seed, d, base_dir, prompts)
        print("case %-7s seed %d: router gap %.3e, greedy gap %.3e, lora targets selected %s -> %s"
              % (c["name"], seed, info["min_router_gap"], info["min_greedy_logit_gap"],
                 info["all_lora_targets_selected"], "ok" if ok else "retry"))
        if ok:
            break
    else:
        raise RuntimeError("no acceptable seed for case " + c["name"])
    with open(os.path.join(d, "prompts.json"), "w") as f:
        json.dump({"prompts": prompts}, f)
        f.write("\n")
    merged = ref.merge_loras(model)
    base = ref.Model.from_dir(base_dir)
    for pi, p in enumerate(prompts):
        logits = ref.forward(model, p)
        assert np.max(np.abs(logits - ref.forward(merged, p))) < 1e-9, "on-the-fly and merged LoRA disagree"
        assert np.max(np.abs(logits - ref.forward(base, p))) > 1e-1, "the LoRAs do not change the logits"
        np.save(os.path.join(d, "logits_%d.npy" % pi), logits.astype(np.float32))
    with open(os.path.join(d, "greedy.json"), "w") as f:
        json.dump({"n": N_GREEDY, "greedy": greedy_res}, f)
        f.write("\n")
    meta = dict(case=c["name"], base=c["base"], seed=seed,
                loras=[dict(target=t, rank=r, dtype=dt, alpha=a, scale=s) for t, r, dt, a, s in c["loras"]],
                **info)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def build_pruned_case(c, out):
    d = os.path.join(out, c["name"])
    base_dir = os.path.join(out, c["base"])
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(base_dir, "prompts.json")) as f:
        prompts = json.load(f)["prompts"]
    base = ref.Model.from_dir(base_dir)
    model = ref.delete_experts(base, c["att_removed"], c["mlp_removed"], c["k_att"], c["k_mlp"])
    greedy_res, min_ggap, min_rgap, where = [], float("inf"), float("inf"), None
    for pi, p in enumerate(prompts):
        new, gaps = ref.greedy(model, p, N_GREEDY, return_gaps=True)
        greedy_res.append({"prompt_index": pi, "n": N_GREEDY, "tokens": new})
        min_ggap = min(min_ggap, min(gaps))
        trace = []
        ref.forward(model, p + new[:-1], trace=trace)
        (g, w), _ = router_gaps(trace, model.k_att, model.k_mlp)
        if g < min_rgap:
            min_rgap, where = g, dict(w, prompt_index=pi)
    print("case %-7s (from %s): router gap %.3e, greedy gap %.3e"
          % (c["name"], c["base"], min_rgap, min_ggap))
    assert min_rgap >= MIN_ROUTER_GAP and min_ggap >= MIN_GREEDY_GAP, "near-tie: choose other removals"
    for name in ("prompts.json",):
        shutil.copy(os.path.join(base_dir, name), os.path.join(d, name))
    with open(os.path.join(d, "submodel.json"), "w") as f:
        json.dump({k: c[k] for k in ("base", "att_removed", "mlp_removed", "k_att", "k_mlp")}, f, indent=2)
        f.write("\n")
    for pi, p in enumerate(prompts):
        logits = ref.forward(model, p)
        assert np.max(np.abs(logits - ref.forward(base, p))) > 1e-1, "the removal does not change the logits"
        np.save(os.path.join(d, "logits_%d.npy" % pi), logits.astype(np.float32))
    with open(os.path.join(d, "greedy.json"), "w") as f:
        json.dump({"n": N_GREEDY, "greedy": greedy_res}, f)
        f.write("\n")
    meta = dict(case=c["name"], base=c["base"], seed=0, min_router_gap=min_rgap, min_router_gap_at=where,
                min_greedy_logit_gap=min_ggap)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--skip-checks", action="store_true")
    ap.add_argument("--case", action="append", help="only these cases (default: all)")
    args = ap.parse_args()
    if not args.skip_checks:
        import check_ref
        check_ref.run_all()
    os.makedirs(args.out, exist_ok=True)
    metas = []
    for c in CASES:
        if args.case and c["name"] not in args.case:
            continue
        metas.append(build_case(c, args.out))
    for c in LORA_CASES:  # after the base cases they read
        if args.case and c["name"] not in args.case:
            continue
        metas.append(build_lora_case(c, args.out))
    for c in PRUNED_CASES:
        if args.case and c["name"] not in args.case:
            continue
        metas.append(build_pruned_case(c, args.out))
    for m in metas:
        print("%-7s seed %d  min router gap %.4e  min greedy logit gap %.4e"
              % (m["case"], m["seed"], m["min_router_gap"], m["min_greedy_logit_gap"]))


if __name__ == "__main__":
    main()
