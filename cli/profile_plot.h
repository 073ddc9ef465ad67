// brick profile --plot: a heatmap PNG of a profile, layers (rows) x experts (columns), one panel per
// kind, each cell coloured by the expert's share of its layer's busiest expert.
#pragma once

#include <string>

#include "cli/png_writer.h"
#include "core/model_config.h"
#include "registry/profiles.h"

namespace brickrt::cli {

// cfg: the measured model's config (its removed experts are drawn grey and crossed out).
RgbImage RenderProfile(const ExpertProfile& p, const ModelConfig& cfg);
// RenderProfile + WritePng; IoError naming the path.
Status WriteProfilePlot(const ExpertProfile& p, const ModelConfig& cfg, const std::string& path);

}  // namespace brickrt::cli
