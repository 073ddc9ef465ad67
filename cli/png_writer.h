// A minimal PNG encoder (8-bit RGB, stored deflate blocks, no compression library): enough for the
// plots the CLI writes (brick profile --plot), readable by every viewer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace brickrt::cli {

// An RGB image, row-major, 3 bytes per pixel.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // [height, width, 3]

  RgbImage(int w, int h, uint8_t r = 255, uint8_t g = 255, uint8_t b = 255);
  void Set(int x, int y, uint8_t r, uint8_t g, uint8_t b);  // ignores pixels outside the image
  void FillRect(int x, int y, int w, int h, uint8_t r, uint8_t g, uint8_t b);
};

// The PNG file's bytes: IHDR (8-bit truecolor), one IDAT holding a zlib stream of stored blocks
// (each row prefixed with filter 0), IEND; CRC-32 per chunk and Adler-32 over the raw rows.
std::string EncodePng(const RgbImage& img);
// EncodePng into a file; IoError naming the path.
Status WritePng(const std::string& path, const RgbImage& img);

// Draws `text` with the built-in 5x7 bitmap font (A-Z, 0-9, a few signs; lower case drawn as upper
// case, anything else as a box) at (x, y) = top-left, each font pixel `scale` pixels wide. Returns the
// width drawn. vertical: rotated 90° counter-clockwise, reading bottom to top, (x, y) = bottom-left.
int DrawText(RgbImage& img, int x, int y, const std::string& text, int scale, uint8_t r, uint8_t g, uint8_t b,
             bool vertical = false);
// The width DrawText would use.
int TextWidth(const std::string& text, int scale);

}  // namespace brickrt::cli
