// libFuzzer targets for every parser that reads bytes from outside: .npy, PyTorch files
// (zip, legacy pickle stream, TorchScript archives), safetensors, ZIP, PNG/JPEG, and the
// CLIP tokenizer. One binary per target: compile with -DGANSERVE_FUZZ_<TARGET>.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/checkpoint/nvidia_pickle.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/torch_file.h"
#include "core/io/image_codec.h"
#include "core/io/npy.h"
#include "core/io/zip.h"
#include "core/models/clip/random_init.h"
#include "core/models/clip/tokenizer.h"

namespace gc = ganserve::core;

namespace {

// Materialises up to a bounded number of elements of a view, as callers would.
void Touch(const gc::TensorView& v) {
  if (v.numel() >= 0 && v.numel() <= (1 << 20)) (void)gc::ToFloatTensor(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
#if defined(GANSERVE_FUZZ_NPY)
  auto v = gc::ParseNpy(std::make_shared<const std::string>(bytes));
  if (v.ok()) Touch(*v);
#elif defined(GANSERVE_FUZZ_TORCH)
  auto f = gc::ParseTorchFile(gc::MappedFile::FromString(bytes));
  if (f.ok() && f->format == gc::TorchFileFormat::kPickle) {
    // NVIDIA network pickles: the walk over persistent objects and the key map.
    auto nv = gc::NvidiaGeneratorToRosinality(f->root);
    if (nv.ok()) {
      for (const auto& [name, t] : nv->tensors) Touch(gc::ViewOf(std::make_shared<const gc::FloatTensor>(t)));
    }
  }
  if (f.ok()) {
    auto sd = gc::StateDictTensors(f->root);
    if (sd.ok()) {
      for (const auto& [name, t] : *sd) Touch(t);
    }
  }
#elif defined(GANSERVE_FUZZ_SAFETENSORS)
  auto f = gc::ParseSafetensors(gc::MappedFile::FromString(bytes));
  if (f.ok()) {
    for (const auto& [name, t] : f->tensors) Touch(t);
  }
#elif defined(GANSERVE_FUZZ_ZIP)
  auto z = gc::ZipReader::Open(gc::MappedFile::FromString(bytes));
  if (z.ok()) {
    for (const auto& e : (*z)->entries()) (void)(*z)->Read(e.name, 1 << 20);
  }
#elif defined(GANSERVE_FUZZ_IMAGE)
  gc::DecodeLimits limits;
  limits.max_width = limits.max_height = 1024;
  limits.max_pixels = 1 << 20;
  (void)gc::DecodeImage(bytes, limits);
#elif defined(GANSERVE_FUZZ_TOKENIZER)
  static const auto* tok = gc::clip::Tokenizer::FromText(gc::clip::SyntheticVocabulary())->release();
  (void)tok->Tokenize(bytes, /*truncate=*/true);
#else
#error "define one GANSERVE_FUZZ_<TARGET>"
#endif
  return 0;
}
