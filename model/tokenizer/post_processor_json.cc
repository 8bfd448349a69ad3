// LoadPostProcessor: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and
// Sequence from tokenizer.json (Bert/Roberta are expressed as templates).
#include <utility>
#include <vector>

#include "model/status_macros.h"
#include "model/tokenizer/component_json.h"

namespace triad::tokenizer {
namespace {

using json_fields::Child;
using json_fields::Json;
using json_fields::Member;

absl::StatusOr<std::vector<TemplatePiece>> LoadTemplate(const Json& j, absl::string_view path,
                                                        absl::string_view key) {
  const std::string list_path = Child(path, key);
  const Json* list = Member(j, key);
  if (list == nullptr || !list->is_array()) {
    return json_fields::Invalid(list_path, "expected an array");
  }
  std::vector<TemplatePiece> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string item_path = Child(list_path, i);
    const Json& item = (*list)[i];
    const Json* seq = Member(item, "Sequence");
    const Json* special = Member(item, "SpecialToken");
    const Json* body = seq != nullptr ? seq : special;
    if (body == nullptr) {
      return json_fields::Invalid(item_path,
                                  "expected {\"Sequence\": ...} or "
                                  "{\"SpecialToken\": ...}");
    }
    const std::string body_path = Child(item_path, seq != nullptr ? "Sequence" : "SpecialToken");
    TemplatePiece piece;
    TRIAD_ASSIGN_OR_RETURN(const std::string id, json_fields::String(*body, body_path, "id"));
    TRIAD_ASSIGN_OR_RETURN(const int64_t type_id, json_fields::Int(*body, body_path, "type_id", 0));
    piece.type_id = static_cast<int32_t>(type_id);
    piece.is_sequence = seq != nullptr;
    if (piece.is_sequence && id != "A" && id != "B") {
      return json_fields::Invalid(Child(body_path, "id"), "expected \"A\" or \"B\"");
    }
    piece.is_b = piece.is_sequence && id == "B";
    if (!piece.is_sequence) piece.special = id;
    out.push_back(std::move(piece));
  }
  return out;
}

absl::StatusOr<std::vector<TemplateSpecial>> LoadTemplateSpecials(const Json& j,
                                                                  absl::string_view path) {
  const std::string map_path = Child(path, "special_tokens");
  std::vector<TemplateSpecial> out;
  const Json* map = Member(j, "special_tokens");
  if (map == nullptr || map->is_null()) return out;
  if (!map->is_object()) return json_fields::Invalid(map_path, "expected an object");
  for (const auto& [name, value] : map->items()) {
    const std::string item_path = Child(map_path, name);
    const Json* ids = Member(value, "ids");
    const Json* tokens = Member(value, "tokens");
    if (ids == nullptr || tokens == nullptr || !ids->is_array() || !tokens->is_array() ||
        ids->size() != tokens->size()) {
      return json_fields::Invalid(item_path, "expected \"ids\" and \"tokens\" of equal length");
    }
    TemplateSpecial special;
    special.name = name;
    for (size_t i = 0; i < ids->size(); ++i) {
      if (!(*tokens)[i].is_string()) {
        return json_fields::Invalid(Child(Child(item_path, "tokens"), i), "expected a string");
      }
      TRIAD_ASSIGN_OR_RETURN(const int32_t id,
                             json_fields::TokenId((*ids)[i], Child(Child(item_path, "ids"), i)));
      special.ids.push_back(id);
      special.tokens.push_back((*tokens)[i].get<std::string>());
    }
    out.push_back(std::move(special));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<PostProcessor>> LoadTemplateProcessing(const Json& j,
                                                                      absl::string_view path) {
  TRIAD_ASSIGN_OR_RETURN(auto single, LoadTemplate(j, path, "single"));
  TRIAD_ASSIGN_OR_RETURN(auto pair, LoadTemplate(j, path, "pair"));
  TRIAD_ASSIGN_OR_RETURN(auto specials, LoadTemplateSpecials(j, path));
  for (const auto* list : {&single, &pair}) {
    for (const TemplatePiece& piece : *list) {
      if (piece.is_sequence) continue;
      bool found = false;
      for (const TemplateSpecial& s : specials) found = found || s.name == piece.special;
      if (!found) {
        return json_fields::Invalid(Child(path, "special_tokens"),
                                    absl::StrCat("template uses \"", piece.special,
                                                 "\", which special_tokens does not define"));
      }
    }
  }
  return MakeTemplateProcessing(std::move(single), std::move(pair), std::move(specials));
}

// BertProcessing/RobertaProcessing: "cls" and "sep" are [token, id] pairs.
absl::StatusOr<std::unique_ptr<PostProcessor>> LoadClsSep(const Json& j, absl::string_view path,
                                                          bool roberta) {
  std::vector<TemplateSpecial> specials;
  for (const char* key : {"cls", "sep"}) {
    const Json* v = Member(j, key);
    if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[0].is_string()) {
      return json_fields::Invalid(Child(path, key), "expected [token, id]");
    }
    TRIAD_ASSIGN_OR_RETURN(const int32_t id, json_fields::TokenId((*v)[1], Child(Child(path, key), 1)));
    specials.push_back({key, {id}, {(*v)[0].get<std::string>()}});
  }
  const auto special = [](const char* name, int32_t type_id) {
    return TemplatePiece{false, false, name, type_id};
  };
  const auto sequence = [](bool is_b, int32_t type_id) {
    return TemplatePiece{true, is_b, "", type_id};
  };
  const int32_t b_type = roberta ? 0 : 1;
  std::vector<TemplatePiece> single = {special("cls", 0), sequence(false, 0), special("sep", 0)};
  std::vector<TemplatePiece> pair = single;
  if (roberta) pair.push_back(special("sep", 0));
  pair.push_back(sequence(true, b_type));
  pair.push_back(special("sep", b_type));
  return MakeTemplateProcessing(std::move(single), std::move(pair), std::move(specials));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> LoadPostProcessor(const Json& j,
                                                                 absl::string_view path) {
  if (j.is_null()) return MakeConcatPostProcessor();
  TRIAD_ASSIGN_OR_RETURN(const std::string type, json_fields::Type(j, path));
  if (type == "TemplateProcessing") return LoadTemplateProcessing(j, path);
  if (type == "ByteLevel") return MakeConcatPostProcessor();
  if (type == "BertProcessing") return LoadClsSep(j, path, false);
  if (type == "RobertaProcessing") return LoadClsSep(j, path, true);
  if (type == "Sequence") {
    // Only one member of a sequence can add tokens in practice (ByteLevel + template).
    const std::string list_path = Child(path, "processors");
    const Json* list = Member(j, "processors");
    if (list == nullptr || !list->is_array()) {
      return json_fields::Invalid(list_path, "expected an array");
    }
    std::unique_ptr<PostProcessor> chosen = MakeConcatPostProcessor();
    for (size_t i = 0; i < list->size(); ++i) {
      TRIAD_ASSIGN_OR_RETURN(const std::string t,
                             json_fields::Type((*list)[i], Child(list_path, i)));
      if (t == "ByteLevel") continue;
      TRIAD_ASSIGN_OR_RETURN(chosen, LoadPostProcessor((*list)[i], Child(list_path, i)));
    }
    return chosen;
  }
  return json_fields::Unsupported(Child(path, "type"),
                                  absl::StrCat("unsupported post_processor \"", type, "\""));
}

}  // namespace triad::tokenizer
