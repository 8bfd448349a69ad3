// Checkpoint: the model-folder half of safetensors.h (single file or sharded index).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/io/json_util.h"
#include "model/io/mapped_file.h"
#include "model/io/safetensors.h"
#include "model/status_macros.h"

namespace triad::io {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

bool IsFile(const fs::path& path) {
  std::error_code error;
  return fs::is_regular_file(path, error);
}

// What model.safetensors.index.json says, checked for shape but not yet against the shards.
struct ShardIndex {
  std::map<std::string, std::string> metadata;
  // shard file name -> tensors the weight_map puts in it (std::map: shards open in name order)
  std::map<std::string, std::set<std::string>> tensors_by_shard;
  std::set<std::string> listed;  // every tensor the weight_map names
};

// A shard must be a plain file name next to the index; anything else could read files
// outside the model folder.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

absl::StatusOr<std::map<std::string, std::string>> ParseIndexMetadata(const std::string& path,
                                                                      const json& index) {
  std::map<std::string, std::string> metadata;
  if (!index.contains("metadata")) return metadata;
  const json& value = index["metadata"];
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": key 'metadata' must be an object, got ", value.type_name()));
  }
  // HF stores total_size as a number; keep non-strings as their JSON text.
  for (const auto& [key, item] : value.items()) {
    metadata.emplace(key, item.is_string() ? item.get<std::string>() : item.dump());
  }
  return metadata;
}

absl::StatusOr<ShardIndex> ReadShardIndex(const std::string& path) {
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  const std::string_view text =
      file->size() == 0
          ? std::string_view()
          : std::string_view(reinterpret_cast<const char*>(file->data()), file->size());
  TRIAD_ASSIGN_OR_RETURN(const json index, ParseJsonStrict(path, "shard index", text));
  if (!index.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": shard index must be a JSON object, got ", index.type_name()));
  }
  ShardIndex parsed;
  TRIAD_ASSIGN_OR_RETURN(parsed.metadata, ParseIndexMetadata(path, index));
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": key 'weight_map' must be an object of tensor name to shard file"));
  }
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": key 'weight_map': tensor '", tensor,
                                                     "': shard ", shard.dump(),
                                                     " must be a file name in the same folder"));
    }
    parsed.tensors_by_shard[shard.get<std::string>()].insert(tensor);
    parsed.listed.insert(tensor);
  }
  return parsed;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenShard(const std::string& index_path,
                                                           const fs::path& dir,
                                                           const std::string& shard,
                                                           const std::set<std::string>& wanted) {
  const std::string shard_path = (dir / shard).string();
  if (!IsFile(shard_path)) {
    return absl::NotFoundError(absl::StrCat(index_path, ": shard '", shard, "' (holding tensor '",
                                            *wanted.begin(), "') does not exist: ", shard_path));
  }
  TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(shard_path));
  for (const std::string& tensor : wanted) {
    if (file->Find(tensor) == nullptr) {
      return absl::NotFoundError(absl::StrCat(index_path, ": weight_map puts tensor '", tensor,
                                              "' in ", shard_path, ", which does not contain it"));
    }
  }
  return file;
}

absl::Status NoCheckpointError(const fs::path& dir) {
  std::string message = absl::StrCat(dir.string(), ": no ", Checkpoint::kSingleFileName, " or ",
                                     Checkpoint::kIndexFileName, " in the model folder");
  for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    if (IsFile(dir / pickle)) {
      absl::StrAppend(&message, "; found ", pickle,
                      ", but .bin/.pt (pickle) checkpoints are not supported: convert the model "
                      "to safetensors");
      break;
    }
  }
  return absl::NotFoundError(message);
}

// The files of a model folder, opened and each validated, before cross-file checks.
struct OpenedFiles {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::string> metadata;
  std::string index_path;  // empty for a single model.safetensors
  ShardIndex index;
};

absl::StatusOr<OpenedFiles> OpenFiles(const fs::path& dir) {
  OpenedFiles opened;
  if (IsFile(dir / Checkpoint::kSingleFileName)) {
    TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           SafetensorsFile::Open((dir / Checkpoint::kSingleFileName).string()));
    opened.metadata = file->metadata();
    opened.files.push_back(std::move(file));
    return opened;
  }
  if (!IsFile(dir / Checkpoint::kIndexFileName)) return NoCheckpointError(dir);
  opened.index_path = (dir / Checkpoint::kIndexFileName).string();
  TRIAD_ASSIGN_OR_RETURN(opened.index, ReadShardIndex(opened.index_path));
  for (const auto& [shard, tensors] : opened.index.tensors_by_shard) {
    TRIAD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           OpenShard(opened.index_path, dir, shard, tensors));
    opened.files.push_back(std::move(file));
  }
  opened.metadata = opened.index.metadata;
  return opened;
}

}  // namespace

Checkpoint::~Checkpoint() = default;

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::error_code error;
  if (!fs::exists(model_dir, error)) {
    return absl::NotFoundError(absl::StrCat(model_dir, ": model folder does not exist"));
  }
  if (!fs::is_directory(model_dir, error)) {
    return absl::InvalidArgumentError(absl::StrCat(model_dir, ": not a folder"));
  }
  TRIAD_ASSIGN_OR_RETURN(OpenedFiles opened, OpenFiles(model_dir));
  auto checkpoint = std::unique_ptr<Checkpoint>(new Checkpoint());
  checkpoint->files_ = std::move(opened.files);
  checkpoint->metadata_ = std::move(opened.metadata);
  const bool sharded = !opened.index_path.empty();
  // OpenShard has checked weight_map -> shard; this checks shard -> weight_map, so that every
  // stored tensor has exactly one home.
  for (const std::unique_ptr<SafetensorsFile>& file : checkpoint->files_) {
    for (const std::string& name : file->names()) {
      auto [it, inserted] = checkpoint->owner_.emplace(name, file.get());
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(opened.index_path, ": tensor '", name,
                                                       "' is stored in both ", it->second->path(),
                                                       " and ", file->path()));
      }
      if (sharded && opened.index.listed.count(name) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            file->path(), ": tensor '", name, "' is not in the weight_map of ", opened.index_path));
      }
    }
  }
  return checkpoint;
}

const TensorView* Checkpoint::Find(std::string_view name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? nullptr : it->second->Find(name);
}

std::string Checkpoint::FileOf(std::string_view name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? std::string() : it->second->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const std::unique_ptr<SafetensorsFile>& file : files_) {
    names.insert(names.end(), file->names().begin(), file->names().end());
  }
  return names;
}

void Checkpoint::Release(std::string_view name) const {
  auto it = owner_.find(name);
  if (it != owner_.end()) it->second->Release(name);
}

}  // namespace triad::io
