#pragma once
/// ImageFolder: a classification data set stored as root/<class>/<file>.jpg, as
/// torchvision's datasets.ImageFolder reads it (ImageNet's train/ and val/ trees).

#include <cstdint>
#include <string>
#include <vector>

namespace pacer::data {

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;  // class folder names, sorted; label i is classes[i]
  std::vector<std::string> files;    // full paths, grouped by class, sorted within each class
  std::vector<int64_t> labels;       // labels[i] is the class index of files[i]
  int64_t size() const { return int64_t(files.size()); }
};

/// True for the file names ImageFolder keeps: extensions .jpg / .jpeg in any letter case.
bool is_jpeg_name(const std::string& name);

/// Scans `root`: every sub-folder is a class (sorted by name -> index 0, 1, ..., as in
/// torchvision), and every JPEG below it, at any depth, a sample (paths sorted). Throws
/// pacer::Error for a missing root, a root without class folders, or a class folder
/// without JPEGs (naming them).
ImageFolder scan_image_folder(const std::string& root);

}  // namespace pacer::data
