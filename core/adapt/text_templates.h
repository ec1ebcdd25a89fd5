// Prompt templates for CLIP text directions.
#ifndef GANSERVE_CORE_ADAPT_TEXT_TEMPLATES_H_
#define GANSERVE_CORE_ADAPT_TEXT_TEMPLATES_H_

#include <string>
#include <vector>

namespace ganserve::core::adapt {

// The 79 ImageNet prompt templates StyleGAN-NADA averages text directions over: CLIP's
// 80 ImageNet templates without "a photo of many {}.", in StyleGAN-NADA's order.
const std::vector<std::string>& ImagenetTemplates();

// Every template with "{}" replaced by `text`.
std::vector<std::string> ApplyTemplates(const std::string& text);

}  // namespace ganserve::core::adapt

#endif  // GANSERVE_CORE_ADAPT_TEXT_TEMPLATES_H_
