#!/usr/bin/env bash
# Resident memory of submodels: the private memory `brick run` holds after generating (RssAnon) and
# its peak RSS (which also counts the registry's file pages SQLite maps in), on specs keeping 100%,
# 50%, 25% and 12.5% of the MLP experts (and 50% of the attention experts in the smaller ones) of a
# MoLM-shaped 4-layer BF16 model, next to the bytes `brick compose` says it loads. Markdown table.
#   bench/submodel_memory.sh [BRICK_BINARY]      (default build/cli/brick; needs ~3 GB of disk in $TMPDIR)
set -euo pipefail
brick=$(realpath "${1:-build/cli/brick}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export BRICK_REGISTRY=$dir/registry.db
$brick make-test-model "$dir/m" --layers 4 --d-model 1024 --ffd-hidden 2048 --gating-size 256 \
  --attn-experts 16 --mlp-experts 32 --vocab 50295 --dtype bf16 >/dev/null
$brick import "$dir/m" --name molm4 >/dev/null

field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
echo "| MLP experts kept | attention experts kept | bytes to load (MiB) | private RSS (MiB) | private / bytes | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|"
for spec in "32 16" "16 16" "8 8" "4 8"; do
  read -r mlp att <<<"$spec"
  cat >"$dir/spec.yaml" <<YAML
model: molm4
experts:
  mlp: {keep: {"0-3": "0-$((mlp - 1))"}}
  attention: {keep: {"0-3": "0-$((att - 1))"}}
YAML
  bytes=$($brick compose "$dir/spec.yaml" --json | field bytes_to_load)
  $brick run "$dir/spec.yaml" --tokens 11,42,7 -n 4 --temp 0 --json >"$dir/run.json"
  anon=$(field rss_anon_bytes <"$dir/run.json")
  peak=$(field peak_rss_bytes <"$dir/run.json")
  awk -v m="$mlp" -v a="$att" -v b="$bytes" -v r="$anon" -v p="$peak" 'BEGIN {
    printf "| %d/32 | %d/16 | %.0f | %.0f | %.2f | %.0f |\n", m, a, b / 1048576, r / 1048576, r / b, p / 1048576 }'
done
$brick run molm4 --tokens 11,42,7 -n 4 --temp 0 --json >"$dir/run.json"
echo
echo "full model (brick run molm4): private RSS $(($(field rss_anon_bytes <"$dir/run.json") / 1048576)) MiB," \
  "peak RSS $(($(field peak_rss_bytes <"$dir/run.json") / 1048576)) MiB"
