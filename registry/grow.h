// Growing a model (ModuleFormer's A′, spec §4.3): externally trained experts for one layer become new
// expert bricks, the layer's router a new version with their rows appended, under a new manifest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "registry/registry.h"

namespace brickrt {

struct GrowRequest {
  std::string model_ref;  // the model to grow: NAME | NAME@VERSION | NAME:TAG (imported, submodel or grown)
  int64_t layer = -1;
  bool attention = false;    // true: attention experts (--kind attn); false: MLP experts (--kind mlp)
  std::string experts_path;  // safetensors: the new experts stacked, checkpoint layout (see GrowModel)
  std::string router_path;   // safetensors: the router's output rows, new [n_new, G] or full (see GrowModel)
  std::string new_name;      // name of the new manifest; must not be used by any manifest yet
  Visibility visibility = Visibility::kShared;  // of the new expert bricks
  std::string source;                           // free text stored as the manifest's source; empty: the two file paths
};

struct GrowResult {
  ManifestRecord base;      // the manifest that was grown
  ManifestRecord manifest;  // the new one, new_name@1 (base = base.Ref())
  // The grown layer's new bricks: experts E..E+n_new-1 in index order, then the router version.
  std::vector<BrickRecord> added;
  BrickRecord old_router;  // the base's router brick of that layer: the new router version's lineage parent
  int64_t experts_before = 0, experts_after = 0;  // the layer's router outputs (a submodel's removed included)
  int64_t params_before = 0, params_after = 0;    // weights of the model's bricks (loras not counted)
  int64_t new_blob_bytes = 0;                     // payload bytes written
};

// Reads and checks both files against the base model, then stores, in one transaction (nothing is
// written on any error):
//   - n_new expert bricks new_name/L<layer>.{mlp,attn}.E<j>, j = E..E+n_new-1 where E is the layer's
//     router count (a submodel's removed experts included: ids are always the original model's), no
//     lineage parent, metadata {"op": "grow", ...};
//   - a new router brick new_name/L<layer>.{mlp,attn}.router whose w2 is the old w2 with the new rows
//     appended (w1, b1 unchanged), lineage parent = the base's router brick; private when the old
//     router or the new experts are;
//   - manifest new_name@1, kind model, base = the grown manifest's ref, its config the base's with
//     n_{mlp,att}_experts[layer] = E + n_new (removed lists and top-k unchanged), its bricks the base's
//     (on-the-fly loras with their scales) with the router replaced and the experts added; an event
//     "grow".
// New bricks live under new_name, never under the base model's name: that namespace belongs to `brick
// import` of the base (a re-import would version a grown expert as if it were the checkpoint's), and
// two grows of one base would otherwise fight over one brick name.
//
// Expert file (accepted with or without the "transformer.h.<layer>." prefix; a prefix naming another
// layer is an error; no other tensor may be present), dtype = the model's:
//   mlp:  mlpf.experts.weight [n_new, D, F], mlpf.output_experts.weight [n_new, F, D]
//   attn: attn.q_proj.experts.weight [n_new, D, A], attn.q_proj.output_experts.weight [n_new, A, D]
// Router file: <p>.gate.w_gate.3.weight (p = mlpf | attn.q_proj, prefix as above), either the new rows
// [n_new, G] or a full matrix whose first rows equal the base's router exactly: [E + n_new, G] (every
// stored row), or for a submodel that removed experts also [kept + n_new, G] (the rows of the model it
// exports to, `brick export`). Optional <p>.gate.w_gate.0.weight [G, D] / .bias [G] must equal the
// base's router hidden layer byte for byte (it is shared and unchanged). Every value must be finite.
//
// Errors, one line each naming the file and the tensor: NotFound (model, file or tensor missing);
// InvalidArgument (a plugin, layer out of range, new_name taken or malformed, wrong shape, dtype,
// n_new differing between the files, a full router's old rows or hidden layer differing, NaN/Inf, an
// unexpected tensor); Corrupt (a malformed file, a stored payload failing its checksum); IoError and
// Unavailable as Registry::SaveManifest.
Result<GrowResult> GrowModel(Registry& reg, const GrowRequest& req);

}  // namespace brickrt
