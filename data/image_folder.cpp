#include "data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace pacer::data {

namespace fs = std::filesystem;

bool is_jpeg_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg";
}

ImageFolder scan_image_folder(const std::string& root) {
  std::error_code ec;
  PACER_CHECK(fs::is_directory(root, ec), "ImageFolder: '{}' is not a folder (expected root/<class>/<image>.jpg)",
              root);
  ImageFolder set;
  set.root = root;
  for (const fs::directory_entry& e : fs::directory_iterator(root)) {
    if (e.is_directory()) set.classes.push_back(e.path().filename().string());
  }
  PACER_CHECK(!set.classes.empty(), "ImageFolder: '{}' has no class folders (expected root/<class>/<image>.jpg)",
              root);
  std::sort(set.classes.begin(), set.classes.end());

  std::vector<std::string> empty_classes;
  for (size_t label = 0; label < set.classes.size(); ++label) {
    const fs::path dir = fs::path(root) / set.classes[label];
    std::vector<std::string> found;
    // Symlinked folders are followed, as torchvision does (os.walk(followlinks=True)).
    for (const fs::directory_entry& e :
         fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink)) {
      if (e.is_regular_file() && is_jpeg_name(e.path().filename().string())) found.push_back(e.path().string());
    }
    if (found.empty()) empty_classes.push_back(set.classes[label]);
    std::sort(found.begin(), found.end());
    for (std::string& f : found) {
      set.files.push_back(std::move(f));
      set.labels.push_back(int64_t(label));
    }
  }
  if (!empty_classes.empty()) {
    std::string names;
    for (size_t i = 0; i < empty_classes.size() && i < 5; ++i) names += (i ? ", '" : "'") + empty_classes[i] + "'";
    if (empty_classes.size() > 5) names += fmt::format(" and {} more", empty_classes.size() - 5);
    PACER_FAIL("ImageFolder: '{}': {} class folder(s) hold no .jpg/.jpeg files: {}", root, empty_classes.size(), names);
  }
  return set;
}

}  // namespace pacer::data
