// RenderProfile: title, then an attention panel and an MLP panel stacked, each with layer labels on
// the left, expert labels below and its own axis titles, and a colour bar at the bottom.
#include "cli/profile_plot.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace brickrt::cli {
namespace {

constexpr int kScale = 2;            // font pixels -> image pixels
constexpr int kCharH = 7 * kScale;   // text height
constexpr int kMargin = 16;

struct Rgb {
  uint8_t r, g, b;
};

// A sequential colour map (viridis' ends and middle): dark purple = never chosen, yellow = busiest.
Rgb ColorAt(double t) {
  static constexpr std::array<std::array<double, 3>, 5> kStops = {{
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};
  t = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
  const size_t i = std::min<size_t>(static_cast<size_t>(t), kStops.size() - 2);
  const double f = t - static_cast<double>(i);
  auto mix = [&](int c) { return static_cast<uint8_t>(std::lround(kStops[i][c] * (1 - f) + kStops[i + 1][c] * f)); };
  return {mix(0), mix(1), mix(2)};
}

int64_t MaxExperts(const ExpertProfile& p, bool attention) {
  int64_t n = 1;
  for (const LayerProfile& l : p.layers)
    if (l.attention == attention) n = std::max<int64_t>(n, static_cast<int64_t>(l.counts.size()));
  return n;
}

// Label every `step`-th index so labels never overlap: step is 1, 2, 5, 10, 20, 50, ...
int LabelStep(int cell, int label_extent) {
  static constexpr int kSteps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
  for (int s : kSteps)
    if (s * cell >= label_extent) return s;
  return 1000;
}

struct Layout {
  int cell_w, cell_h, left, panel_w, panel_h;
};

// Draws one panel with its top-left corner at y; returns the height used.
int DrawPanel(RgbImage& img, const ExpertProfile& p, const ModelConfig& cfg, bool attention, const Layout& lay, int y,
              int n_experts) {
  const int n_layers = static_cast<int>(cfg.n_layer);
  const std::string title = std::string(attention ? "ATTENTION" : "MLP") + " EXPERTS (TOP-" +
                            std::to_string(attention ? cfg.k_att : cfg.k_mlp) + ")";
  DrawText(img, lay.left, y, title, kScale, 0, 0, 0);
  const int top = y + kCharH + 8;
  // Cells.
  for (const LayerProfile& l : p.layers) {
    if (l.attention != attention || l.layer >= n_layers) continue;
    int64_t max_count = 0;
    for (int64_t c : l.counts) max_count = std::max(max_count, c);
    for (size_t e = 0; e < l.counts.size(); ++e) {
      const int x = lay.left + static_cast<int>(e) * lay.cell_w, yy = top + static_cast<int>(l.layer) * lay.cell_h;
      if (cfg.IsRemoved(attention, l.layer, static_cast<int64_t>(e))) {
        img.FillRect(x, yy, lay.cell_w - 1, lay.cell_h - 1, 200, 200, 200);
        for (int d = 0; d < std::min(lay.cell_w, lay.cell_h) - 1; ++d) img.Set(x + d, yy + d, 120, 120, 120);
        continue;
      }
      const Rgb c = ColorAt(max_count > 0 ? static_cast<double>(l.counts[e]) / static_cast<double>(max_count) : 0.0);
      img.FillRect(x, yy, lay.cell_w - 1, lay.cell_h - 1, c.r, c.g, c.b);
    }
  }
  // Layer labels (left) and axis title.
  const int ystep = LabelStep(lay.cell_h, kCharH + 2);
  for (int l = 0; l < n_layers; l += ystep) {
    const std::string s = std::to_string(l);
    DrawText(img, lay.left - 6 - TextWidth(s, kScale), top + l * lay.cell_h + (lay.cell_h - kCharH) / 2, s, kScale, 0,
             0, 0);
  }
  const int grid_h = n_layers * lay.cell_h;
  DrawText(img, kMargin, top + grid_h / 2 + TextWidth("LAYER", kScale) / 2, "LAYER", kScale, 0, 0, 0, /*vertical=*/true);
  // Expert labels (below) and axis title.
  const int xstep = LabelStep(lay.cell_w, TextWidth("000", kScale) + 4);
  for (int e = 0; e < n_experts; e += xstep) {
    const std::string s = std::to_string(e);
    DrawText(img, lay.left + e * lay.cell_w + (lay.cell_w - TextWidth(s, kScale)) / 2 + 1, top + grid_h + 4, s, kScale,
             0, 0, 0);
  }
  const std::string xt = "EXPERT";
  DrawText(img, lay.left + (n_experts * lay.cell_w - TextWidth(xt, kScale)) / 2, top + grid_h + kCharH + 10, xt,
           kScale, 0, 0, 0);
  return (top - y) + grid_h + 2 * kCharH + 14;
}

}  // namespace

RgbImage RenderProfile(const ExpertProfile& p, const ModelConfig& cfg) {
  const int n_layers = static_cast<int>(std::max<int64_t>(1, cfg.n_layer));
  const int att_n = static_cast<int>(MaxExperts(p, true)), mlp_n = static_cast<int>(MaxExperts(p, false));
  const int max_n = std::max(att_n, mlp_n);
  Layout lay;
  lay.cell_w = std::clamp(720 / max_n, 4, 40);
  lay.cell_h = std::clamp(360 / n_layers, 4, 28);
  lay.left = kMargin + kCharH + 10 + TextWidth(std::to_string(n_layers - 1), kScale) + 6;
  lay.panel_w = max_n * lay.cell_w;
  const std::string title = "PROFILE " + p.name + ": " + p.manifest + ", " + std::to_string(p.tokens) + " TOKENS";
  const std::string sub = "CELL = TOKENS THAT CHOSE THE EXPERT / THOSE OF THE BUSIEST IN ITS LAYER";
  const int width = std::max({lay.left + lay.panel_w + kMargin, TextWidth(title, kScale) + 2 * kMargin,
                              TextWidth(sub, kScale) + 2 * kMargin, 360});
  const int panel_h = 3 * kCharH + 22 + n_layers * lay.cell_h;  // as DrawPanel uses
  const int height = kMargin + (kCharH + 6) + (kCharH + 14) + 2 * (panel_h + 12) + kCharH + kMargin;
  RgbImage img(width, height);
  int y = kMargin;
  DrawText(img, kMargin, y, title, kScale, 0, 0, 0);
  y += kCharH + 6;
  DrawText(img, kMargin, y, sub, kScale, 90, 90, 90);
  y += kCharH + 14;
  y += DrawPanel(img, p, cfg, /*attention=*/true, lay, y, att_n) + 12;
  y += DrawPanel(img, p, cfg, /*attention=*/false, lay, y, mlp_n) + 12;
  // Colour bar: 0 .. 1 of the layer's busiest expert, and the swatch for removed experts.
  const int bar_w = std::min(300, width - 2 * kMargin - 140);
  DrawText(img, kMargin, y, "0", kScale, 0, 0, 0);
  const int bx = kMargin + TextWidth("0 ", kScale);
  for (int i = 0; i < bar_w; ++i) {
    const Rgb c = ColorAt(static_cast<double>(i) / (bar_w - 1));
    img.FillRect(bx + i, y, 1, kCharH, c.r, c.g, c.b);
  }
  int x = bx + bar_w + 6;
  x += DrawText(img, x, y, "1", kScale, 0, 0, 0) + 24;
  if (cfg.HasRemovals()) {
    img.FillRect(x, y, kCharH, kCharH, 200, 200, 200);
    DrawText(img, x + kCharH + 6, y, "REMOVED", kScale, 0, 0, 0);
  }
  return img;
}

Status WriteProfilePlot(const ExpertProfile& p, const ModelConfig& cfg, const std::string& path) {
  return WritePng(path, RenderProfile(p, cfg));
}

}  // namespace brickrt::cli
