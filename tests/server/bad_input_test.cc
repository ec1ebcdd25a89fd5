// The request contract, one row per hostile or mistaken input: every RPC answers with
// the expected gRPC code and a message naming what to fix, and the server keeps
// serving (a health check after each row). The table documents the contract.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <grpcpp/generic/generic_stub.h>
#include <httplib.h>

#include "absl/strings/escaping.h"

#include <cmath>
#include <functional>
#include <future>
#include <random>
#include <string>

#include "core/io/image_codec.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/test_server.h"

namespace ganserve::testing {
namespace {

using Stub = v1::GanService::Stub;

template <typename Resp, typename Reader>
grpc::Status Drain(Reader reader) {
  Resp r;
  while (reader->Read(&r)) {
  }
  return reader->Finish();
}

grpc::Status Generate(Stub* s, const v1::GenerateSamplesRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::ImageBatch>(s->GenerateSamples(&c, r));
}
grpc::Status Edit(Stub* s, const v1::EditRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::ImageBatch>(s->Edit(&c, r));
}
grpc::Status Adapt(Stub* s, const v1::AdaptDomainRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::JobEvent>(s->AdaptDomain(&c, r));
}
grpc::Status Invert(Stub* s, const v1::InvertImageRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::JobEvent>(s->InvertImage(&c, r));
}
grpc::Status Prepare(Stub* s, const v1::PrepareGlobalDirectionsRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::JobEvent>(s->PrepareGlobalDirections(&c, r));
}
grpc::Status TrainMapper(Stub* s, const v1::TrainMapperRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::JobEvent>(s->TrainMapper(&c, r));
}
grpc::Status Watch(Stub* s, const v1::WatchJobRequest& r) {
  grpc::ClientContext c;
  return Drain<v1::JobEvent>(s->WatchJob(&c, r));
}
template <typename Req, typename Resp>
grpc::Status Unary(grpc::Status (Stub::*m)(grpc::ClientContext*, const Req&, Resp*), Stub* s, const Req& r) {
  grpc::ClientContext c;
  Resp resp;
  return (s->*m)(&c, r, &resp);
}

// Sends `bytes` as the request of GanService method `method` (any kind: the server
// answers a request it cannot parse before streaming anything).
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext c;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&c, "/ganserve.v1.GanService/" + method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

// A PNG whose header claims `w` x `h` pixels, with valid chunk CRCs and no real data.
std::string PngHeaderOnly(uint32_t w, uint32_t h) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    std::string body = type + data;
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
    return be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
  };
  std::string ihdr = be32(w) + be32(h) + std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IEND", "");
}

v1::GenerateSamplesRequest Gen() {
  v1::GenerateSamplesRequest r;
  r.set_model("tiny");
  r.add_seeds(1);
  return r;
}
v1::EditRequest EditReq() {
  v1::EditRequest r;
  r.set_model("tiny");
  r.add_seeds(1);
  r.mutable_global_direction()->set_neutral_text("a face");
  r.mutable_global_direction()->set_target_text("a smiling face");
  return r;
}
v1::AdaptDomainRequest AdaptReq() {
  v1::AdaptDomainRequest r;
  r.set_model("tiny");
  r.set_source_text("photo");
  r.set_target_text("sketch");
  r.set_iterations(1);
  return r;
}
v1::InvertImageRequest InvertReq(std::string image) {
  v1::InvertImageRequest r;
  r.set_model("tiny");
  r.set_image(std::move(image));
  r.set_steps(1);
  return r;
}
v1::Latent ZLatents(int rows, int cols, float fill) {
  v1::Latent l;
  l.set_space(v1::LATENT_SPACE_Z);
  l.mutable_values()->add_shape(rows);
  l.mutable_values()->add_shape(cols);
  for (int i = 0; i < rows * cols; ++i) l.mutable_values()->add_data(fill);
  return l;
}

struct Case {
  const char* rpc;
  const char* input;
  std::function<grpc::Status(Stub*)> call;
  grpc::StatusCode code;
  const char* says;  // a phrase the message must contain
};

std::vector<Case> Table(const std::shared_ptr<grpc::Channel>& channel) {
  using C = grpc::StatusCode;
  std::vector<Case> t;
  auto gen = [&](const char* what, std::function<void(v1::GenerateSamplesRequest*)> f, C code, const char* says) {
    t.push_back({"GenerateSamples", what,
                 [f](Stub* s) {
                   auto r = Gen();
                   f(&r);
                   return Generate(s, r);
                 },
                 code, says});
  };
  gen(
      "no model", [](auto* r) { r->clear_model(); }, C::INVALID_ARGUMENT, "model");
  gen(
      "unknown model", [](auto* r) { r->set_model("nope"); }, C::NOT_FOUND, "no model named 'nope'");
  gen(
      "model name with a path", [](auto* r) { r->set_model("../etc"); }, C::INVALID_ARGUMENT, "model");
  gen(
      "broken model", [](auto* r) { r->set_model("broken"); }, C::FAILED_PRECONDITION, "broken");
  gen(
      "mean_rows_from past n_latent", [](auto* r) { r->set_mean_rows_from(99); }, C::INVALID_ARGUMENT,
      "mean_rows_from must be in");
  gen(
      "negative mean_rows_from", [](auto* r) { r->set_mean_rows_from(-1); }, C::INVALID_ARGUMENT, "mean_rows_from");
  gen(
      "negative count",
      [](auto* r) {
        r->clear_seeds();
        r->set_count(-3);
      },
      C::INVALID_ARGUMENT, "count");
  gen(
      "huge count",
      [](auto* r) {
        r->clear_seeds();
        r->set_count(1000000000);
      },
      C::INVALID_ARGUMENT, "count");
  gen(
      "negative seed", [](auto* r) { r->set_seeds(0, -1); }, C::INVALID_ARGUMENT, "seed");
  gen(
      "huge batch_size", [](auto* r) { r->set_batch_size(100000); }, C::INVALID_ARGUMENT, "batch_size");
  gen(
      "NaN truncation",
      [](auto* r) {
        r->set_truncation(NAN);
        r->set_has_truncation(true);
      },
      C::INVALID_ARGUMENT, "truncation");
  gen(
      "Inf truncation",
      [](auto* r) {
        r->set_truncation(INFINITY);
        r->set_has_truncation(true);
      },
      C::INVALID_ARGUMENT, "truncation");
  gen(
      "NaN in latents",
      [](auto* r) {
        r->clear_seeds();
        *r->mutable_latents() = ZLatents(1, 64, NAN);
      },
      C::INVALID_ARGUMENT, "finite");
  gen(
      "Inf in latents",
      [](auto* r) {
        r->clear_seeds();
        *r->mutable_latents() = ZLatents(1, 64, INFINITY);
      },
      C::INVALID_ARGUMENT, "finite");
  gen(
      "latents of the wrong width",
      [](auto* r) {
        r->clear_seeds();
        *r->mutable_latents() = ZLatents(1, 63, 0);
      },
      C::INVALID_ARGUMENT, "64");
  gen(
      "shape and data disagree",
      [](auto* r) {
        r->clear_seeds();
        *r->mutable_latents() = ZLatents(2, 64, 0);
        r->mutable_latents()->mutable_values()->mutable_data()->Truncate(70);
      },
      C::INVALID_ARGUMENT, "shape");
  gen(
      "seeds and latents together", [](auto* r) { *r->mutable_latents() = ZLatents(1, 64, 0); }, C::INVALID_ARGUMENT,
      "one of");
  gen(
      "unknown inversion id",
      [](auto* r) {
        r->clear_seeds();
        r->set_inversion_id("inv-ffff");
      },
      C::NOT_FOUND, "inv-ffff");
  gen(
      "a job id as the inversion id",
      [](auto* r) {
        r->clear_seeds();
        r->set_inversion_id("job-0123456789abcdef");
      },
      C::INVALID_ARGUMENT, "inversion");
  gen(
      "malformed inversion id",
      [](auto* r) {
        r->clear_seeds();
        r->set_inversion_id("../../x");
      },
      C::INVALID_ARGUMENT, "inversion");
  gen(
      "unknown format", [](auto* r) { r->set_format(static_cast<v1::ImageFormat>(42)); }, C::INVALID_ARGUMENT,
      "format");
  gen(
      "message over the size limit",
      [](auto* r) {
        r->clear_seeds();
        *r->mutable_latents() = ZLatents(160000, 64, 0.5f);  // ~41 MB > 32 MiB
      },
      C::RESOURCE_EXHAUSTED, "larger than max");

  auto edit = [&](const char* what, std::function<void(v1::EditRequest*)> f, C code, const char* says) {
    t.push_back({"Edit", what,
                 [f](Stub* s) {
                   auto r = EditReq();
                   f(&r);
                   return Edit(s, r);
                 },
                 code, says});
  };
  edit(
      "no method", [](auto* r) { r->clear_global_direction(); }, C::INVALID_ARGUMENT, "method");
  edit(
      "empty neutral text", [](auto* r) { r->mutable_global_direction()->clear_neutral_text(); }, C::INVALID_ARGUMENT,
      "neutral_text");
  edit(
      "target text of 301 characters",
      [](auto* r) { r->mutable_global_direction()->set_target_text(std::string(301, 'a')); }, C::INVALID_ARGUMENT,
      "300");
  edit(
      "alpha out of range", [](auto* r) { r->mutable_global_direction()->add_alphas(99); }, C::INVALID_ARGUMENT,
      "alphas");
  edit(
      "NaN alpha", [](auto* r) { r->mutable_global_direction()->add_alphas(NAN); }, C::INVALID_ARGUMENT, "alphas");
  edit(
      "beta of 1", [](auto* r) { r->mutable_global_direction()->set_beta(1.0f); }, C::INVALID_ARGUMENT, "beta");
  edit(
      "odd Unicode before statistics exist",
      [](auto* r) { r->mutable_global_direction()->set_target_text("\u202e\u0301\xF0\x9F\x92\xA5 \u00e9t\u00e9"); },
      C::FAILED_PRECONDITION, "PrepareGlobalDirections");
  edit(
      "unknown render model", [](auto* r) { r->set_render_model("nope"); }, C::NOT_FOUND, "nope");
  edit(
      "seeds and an inversion", [](auto* r) { r->set_inversion_id("inv-1"); }, C::INVALID_ARGUMENT, "one of");
  edit(
      "unknown CLIP model", [](auto* r) { r->mutable_global_direction()->set_clip_model("nope"); }, C::NOT_FOUND,
      "nope");
  edit(
      "negative l2_lambda",
      [](auto* r) {
        auto* l = r->mutable_latent_optimization();  // replaces the global direction
        l->set_target_text("a smiling face");
        l->set_l2_lambda(-1);
      },
      C::INVALID_ARGUMENT, "l2_lambda");

  auto adapt = [&](const char* what, std::function<void(v1::AdaptDomainRequest*)> f, C code, const char* says) {
    t.push_back({"AdaptDomain", what,
                 [f](Stub* s) {
                   auto r = AdaptReq();
                   f(&r);
                   return Adapt(s, r);
                 },
                 code, says});
  };
  adapt(
      "no target", [](auto* r) { r->clear_target_text(); }, C::INVALID_ARGUMENT, "target");
  adapt(
      "iterations past the cap", [](auto* r) { r->set_iterations(99999); }, C::INVALID_ARGUMENT, "iterations");
  adapt(
      "negative batch", [](auto* r) { r->set_batch_size(-1); }, C::INVALID_ARGUMENT, "batch_size");
  adapt(
      "priority past 10", [](auto* r) { r->set_priority(11); }, C::INVALID_ARGUMENT, "priority");
  adapt(
      "NaN lr_scale", [](auto* r) { r->set_lr_scale(NAN); }, C::INVALID_ARGUMENT, "lr_scale");
  adapt(
      "unknown model", [](auto* r) { r->set_model("nope"); }, C::NOT_FOUND, "nope");
  adapt(
      "prompt longer than CLIP's context",
      [](auto* r) {
        std::string s;
        for (int i = 0; i < 120; ++i) s += "sketch ";
        r->set_target_text(s);
      },
      C::INVALID_ARGUMENT, "target_text");
  adapt(
      "target image that is not an image",
      [](auto* r) {
        r->clear_target_text();
        r->add_target_images("GIF89a");
      },
      C::INVALID_ARGUMENT, "image");
  adapt(
      "request_id with spaces", [](auto* r) { r->set_request_id("a b"); }, C::INVALID_ARGUMENT, "request_id");
  {
    // An image-only adaptation with the global loss: both compare text embeddings, so it
    // is refused at submission instead of failing in the trainer after queueing.
    core::Rgb8Image img;
    img.width = img.height = 8;
    img.pixels.assign(8 * 8 * 3, 90);
    const std::string png = *core::EncodePng(img);
    adapt(
        "image-only with lambda_global",
        [png](auto* r) {
          r->clear_target_text();
          r->add_target_images(png);
          r->set_lambda_global(1);
        },
        C::INVALID_ARGUMENT, "lambda_global");
    adapt(
        "image-only with lambda_manifold",
        [png](auto* r) {
          r->clear_target_text();
          r->add_target_images(png);
          r->set_lambda_manifold(0.5f);
        },
        C::INVALID_ARGUMENT, "target_text");
  }
  adapt(
      "unknown layer_preset", [](auto* r) { r->set_layer_preset(static_cast<v1::LayerPreset>(42)); },
      C::INVALID_ARGUMENT, "layer_preset");
  adapt(
      "unknown adam_steps", [](auto* r) { r->set_adam_steps(static_cast<v1::AdamSteps>(42)); }, C::INVALID_ARGUMENT,
      "adam_steps");
  adapt(
      "every CLIP weight 0",
      [](auto* r) {
        auto* c = r->add_clip_models();
        c->set_name("clip-demo");
        c->set_weight(0);
      },
      C::INVALID_ARGUMENT, "every weight is 0");
  adapt(
      "every loss weight 0", [](auto* r) { r->set_lambda_direction(0); }, C::INVALID_ARGUMENT, "nothing would train");
  adapt(
      "NaN lambda_direction", [](auto* r) { r->set_lambda_direction(NAN); }, C::INVALID_ARGUMENT, "lambda_direction");
  adapt(
      "NaN mixing", [](auto* r) { r->set_mixing(NAN); }, C::INVALID_ARGUMENT, "mixing");
  {
    // One-shot adaptation (OneshotCLIP): one target image, its own settings only.
    core::Rgb8Image img;
    img.width = img.height = 8;
    img.pixels.assign(8 * 8 * 3, 120);
    const std::string png = *core::EncodePng(img);
    auto one_shot = [png](v1::AdaptDomainRequest* r, int images) {
      r->set_method(v1::ADAPT_METHOD_ONE_SHOT);
      r->clear_target_text();
      for (int i = 0; i < images; ++i) r->add_target_images(png);
    };
    adapt(
        "unknown method", [](auto* r) { r->set_method(static_cast<v1::AdaptMethod>(42)); }, C::INVALID_ARGUMENT,
        "method");
    adapt(
        "one-shot settings on a NADA request", [](auto* r) { r->mutable_one_shot()->set_ref_every(2); },
        C::INVALID_ARGUMENT, "apply to method ONE_SHOT");
    adapt(
        "one-shot with two target images", [one_shot](auto* r) { one_shot(r, 2); }, C::INVALID_ARGUMENT,
        "exactly one target image");
    adapt(
        "one-shot with no target image", [one_shot](auto* r) { one_shot(r, 0); }, C::INVALID_ARGUMENT,
        "exactly one target image");
    adapt(
        "one-shot with layer selection",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->set_auto_layer_k(2);
        },
        C::INVALID_ARGUMENT, "applies to method NADA");
    adapt(
        "one-shot with a lightweight parameterization",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->set_parameterization(v1::PARAMETERIZATION_DOMAIN_MODULATION);
        },
        C::INVALID_ARGUMENT, "parameterization must be FULL");
    adapt(
        "one-shot with batch 1",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->set_batch_size(1);
        },
        C::INVALID_ARGUMENT, "batch_size must be >= 2");
    adapt(
        "one-shot w_ref without skipping the search",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->mutable_one_shot()->add_w_ref(0.5f);
        },
        C::INVALID_ARGUMENT, "only with skip_reference_search");
    adapt(
        "one-shot NaN lambda_const",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->mutable_one_shot()->set_lambda_const(NAN);
        },
        C::INVALID_ARGUMENT, "lambda_const");
    adapt(
        "one-shot reference_steps past the cap",
        [one_shot](auto* r) {
          one_shot(r, 1);
          r->mutable_one_shot()->set_reference_steps(6000);
        },
        C::INVALID_ARGUMENT, "reference_steps");
    // The test repository has no AlexNet LPIPS: named, with where to get it.
    adapt(
        "one-shot without the AlexNet LPIPS", [one_shot](auto* r) { one_shot(r, 1); }, C::FAILED_PRECONDITION,
        "lpips_weights.ckpt");
  }

  auto inv = [&](const char* what, std::string image, std::function<void(v1::InvertImageRequest*)> f, C code,
                 const char* says) {
    t.push_back({"InvertImage", what,
                 [image, f](Stub* s) {
                   auto r = InvertReq(image);
                   f(&r);
                   return Invert(s, r);
                 },
                 code, says});
  };
  auto nothing = [](v1::InvertImageRequest*) {};
  inv("no image", "", nothing, C::INVALID_ARGUMENT, "image");
  inv("not an image", "hello, this is text", nothing, C::INVALID_ARGUMENT, "image");
  inv("truncated PNG", PngHeaderOnly(64, 64).substr(0, 20), nothing, C::INVALID_ARGUMENT, "image");
  inv("PNG with a header and no pixels", PngHeaderOnly(64, 64), nothing, C::INVALID_ARGUMENT, "image");
  inv("zero-sized PNG", PngHeaderOnly(0, 0), nothing, C::INVALID_ARGUMENT, "zero");
  inv("decompression bomb (60000 x 60000 px), refused before decoding", PngHeaderOnly(60000, 60000), nothing,
      C::RESOURCE_EXHAUSTED, "limit of 8192x8192");
  core::Rgb8Image small;
  small.width = small.height = 8;
  small.pixels.assign(8 * 8 * 3, 200);
  const std::string png = *core::EncodePng(small);
  inv(
      "negative steps", png, [](auto* r) { r->set_steps(-5); }, C::INVALID_ARGUMENT, "steps");
  inv(
      "NaN lr", png, [](auto* r) { r->set_lr(NAN); }, C::INVALID_ARGUMENT, "lr");
  inv(
      "priority below -10", png, [](auto* r) { r->set_priority(-11); }, C::INVALID_ARGUMENT, "priority");
  inv(
      "space S (not supported for inversion)", png, [](auto* r) { r->set_space(v1::LATENT_SPACE_S); },
      C::INVALID_ARGUMENT, "space");
  inv(
      "unknown model", "x", [](auto* r) { r->set_model("nope"); }, C::NOT_FOUND, "nope");
  inv(
      "negative noise_regularize", png, [](auto* r) { r->set_noise_regularize(-1); }, C::INVALID_ARGUMENT,
      "noise_regularize");
  auto add_points = [](v1::InvertImageRequest* r, int n, float x) {
    for (int i = 0; i < n; ++i) {
      auto* p = r->add_landmarks();
      p->set_x(x + static_cast<float>(i % 3));
      p->set_y(2.0f + static_cast<float>(i % 4));
    }
  };
  inv(
      "three landmarks", png, [&](auto* r) { add_points(r, 3, 2); }, C::INVALID_ARGUMENT, "68 points");
  inv(
      "landmarks on an aligned photo", png,
      [&](auto* r) {
        add_points(r, 5, 2);
        r->set_aligned(true);
      },
      C::INVALID_ARGUMENT, "aligned");
  inv(
      "landmarks outside the photo", png, [&](auto* r) { add_points(r, 5, 9000); }, C::INVALID_ARGUMENT, "outside");
  inv(
      "infinite landmarks", png, [&](auto* r) { add_points(r, 5, INFINITY); }, C::INVALID_ARGUMENT, "finite");
  inv(
      "align with landmarks", png,
      [&](auto* r) {
        add_points(r, 5, 2);
        r->set_align(true);
      },
      C::INVALID_ARGUMENT, "not both");
  inv(
      "align on an aligned photo", png,
      [](auto* r) {
        r->set_align(true);
        r->set_aligned(true);
      },
      C::INVALID_ARGUMENT, "aligned photo");
  inv(
      "align without a landmarks model", png, [](auto* r) { r->set_align(true); }, C::FAILED_PRECONDITION,
      "ImportModel kind LANDMARKS");
  // The encoder method takes refine_steps, not steps.
  auto encoder_method = [](v1::InvertImageRequest* r) {
    r->set_method(v1::INVERT_METHOD_ENCODER);
    r->set_steps(0);
  };
  inv(
      "an unknown method", png, [](auto* r) { r->set_method(static_cast<v1::InvertMethod>(9)); }, C::INVALID_ARGUMENT,
      "method");
  inv("the encoder method without an encoder for the model", png, encoder_method, C::FAILED_PRECONDITION,
      "ImportModel kind ENCODER");
  inv(
      "negative refine_steps", png,
      [encoder_method](auto* r) {
        encoder_method(r);
        r->set_refine_steps(-1);
      },
      C::INVALID_ARGUMENT, "refine_steps");
  inv(
      "an encoder name that is not a model name", png,
      [encoder_method](auto* r) {
        encoder_method(r);
        r->set_encoder("../up");
      },
      C::INVALID_ARGUMENT, "encoder");
  inv(
      "an unknown encoder", png,
      [encoder_method](auto* r) {
        encoder_method(r);
        r->set_encoder("nope");
      },
      C::NOT_FOUND, "nope");

  auto prep = [&](const char* what, std::function<void(v1::PrepareGlobalDirectionsRequest*)> f, C code,
                  const char* says) {
    t.push_back({"PrepareGlobalDirections", what,
                 [f](Stub* s) {
                   v1::PrepareGlobalDirectionsRequest r;
                   r.set_model("tiny");
                   f(&r);
                   return Prepare(s, r);
                 },
                 code, says});
  };
  prep(
      "odd batch size", [](auto* r) { r->set_batch_size(3); }, C::INVALID_ARGUMENT, "batch_size");
  prep(
      "priority past 10", [](auto* r) { r->set_priority(12); }, C::INVALID_ARGUMENT, "priority");
  prep(
      "truncation_cutoff 0", [](auto* r) { r->set_truncation_cutoff(0); }, C::INVALID_ARGUMENT, "truncation_cutoff");
  prep(
      "render_resolution not a power of two", [](auto* r) { r->set_render_resolution(12); }, C::INVALID_ARGUMENT,
      "render_resolution must be a power of two");
  prep(
      "render_resolution above the model's", [](auto* r) { r->set_render_resolution(1 << 20); }, C::INVALID_ARGUMENT,
      "render_resolution must be in");
  prep(
      "unknown clamping", [](auto* r) { r->set_clamping(static_cast<v1::ChannelClamping>(9)); }, C::INVALID_ARGUMENT,
      "clamping");
  prep(
      "too few samples", [](auto* r) { r->set_num_samples(5); }, C::INVALID_ARGUMENT, "num_samples");
  prep(
      "more images than samples",
      [](auto* r) {
        r->set_num_samples(100);
        r->set_num_images(200);
      },
      C::INVALID_ARGUMENT, "num_images");
  prep(
      "unknown CLIP model", [](auto* r) { r->set_clip_model("nope"); }, C::NOT_FOUND, "nope");

  auto mapper = [&](const char* what, std::function<void(v1::TrainMapperRequest*)> f, C code, const char* says) {
    t.push_back({"TrainMapper", what,
                 [f](Stub* s) {
                   v1::TrainMapperRequest r;
                   r.set_model("tiny");
                   r.set_text("a smiling face");
                   r.set_id_lambda(0);
                   f(&r);
                   return TrainMapper(s, r);
                 },
                 code, says});
  };
  mapper(
      "no text", [](auto* r) { r->clear_text(); }, C::INVALID_ARGUMENT, "text is required");
  mapper(
      "text of 301 characters", [](auto* r) { r->set_text(std::string(301, 'a')); }, C::INVALID_ARGUMENT, "300");
  mapper(
      "unknown mapper_type", [](auto* r) { r->set_mapper_type(static_cast<v1::MapperType>(9)); }, C::INVALID_ARGUMENT,
      "mapper_type");
  mapper(
      "group flags on a SINGLE mapper",
      [](auto* r) {
        r->set_mapper_type(v1::MAPPER_TYPE_SINGLE);
        r->set_no_fine(true);
      },
      C::INVALID_ARGUMENT, "LEVELS");
  mapper(
      "every group off",
      [](auto* r) {
        r->set_no_coarse(true);
        r->set_no_medium(true);
        r->set_no_fine(true);
      },
      C::INVALID_ARGUMENT, "change nothing");
  mapper(
      "steps of 300000", [](auto* r) { r->set_steps(300000); }, C::INVALID_ARGUMENT, "steps");
  mapper(
      "negative lr", [](auto* r) { r->set_lr(-1); }, C::INVALID_ARGUMENT, "lr");
  mapper(
      "priority of 1000", [](auto* r) { r->set_priority(1000); }, C::INVALID_ARGUMENT, "priority");
  mapper(
      "batch of 17", [](auto* r) { r->set_batch_size(17); }, C::INVALID_ARGUMENT, "batch_size");
  mapper(
      "clip_lambda 0", [](auto* r) { r->set_clip_lambda(0); }, C::INVALID_ARGUMENT, "clip_lambda");
  mapper(
      "NaN latent_l2_lambda", [](auto* r) { r->set_latent_l2_lambda(NAN); }, C::INVALID_ARGUMENT, "latent_l2_lambda");
  mapper(
      "the official id_lambda without ArcFace", [](auto* r) { r->clear_id_lambda(); }, C::FAILED_PRECONDITION,
      "model_ir_se50.pth");
  mapper(
      "id_lambda of 20", [](auto* r) { r->set_id_lambda(20); }, C::INVALID_ARGUMENT, "id_lambda");
  mapper(
      "an unknown inversion",
      [](auto* r) {
        r->add_inversion_ids("inv-0123456789abcdef");
        r->add_inversion_ids("inv-nope");
      },
      C::NOT_FOUND, "inversion_ids[0]");
  mapper(
      "a malformed inversion id",
      [](auto* r) {
        r->add_inversion_ids("inv-nope");
        r->add_inversion_ids("inv-nope2");
      },
      C::INVALID_ARGUMENT, "not an inversion id");
  mapper(
      "train_latents with inversions",
      [](auto* r) {
        r->add_inversion_ids("inv-nope");
        r->add_inversion_ids("inv-nope2");
        r->set_train_latents(10);
      },
      C::INVALID_ARGUMENT, "train_latents");
  mapper(
      "too few latents for a batch", [](auto* r) { r->set_train_latents(1); }, C::INVALID_ARGUMENT, "train_latents");
  mapper(
      "unknown model", [](auto* r) { r->set_model("nope"); }, C::NOT_FOUND, "nope");
  mapper(
      "output name with a space", [](auto* r) { r->set_output_name("a b"); }, C::INVALID_ARGUMENT, "output_name");
  mapper(
      "unknown CLIP model", [](auto* r) { r->set_clip_model("nope"); }, C::NOT_FOUND, "nope");
  mapper(
      "negative seed", [](auto* r) { r->set_seed(-1); }, C::INVALID_ARGUMENT, "seed");
  mapper(
      "17 previews", [](auto* r) { r->set_preview_count(17); }, C::INVALID_ARGUMENT, "preview_count");
  edit(
      "a mapper edit without a mapper", [](auto* r) { r->mutable_mapper(); }, C::INVALID_ARGUMENT, "mapper");
  edit(
      "a mapper strength out of range",
      [](auto* r) {
        r->mutable_mapper()->set_mapper("m");
        r->mutable_mapper()->add_strengths(11);
      },
      C::INVALID_ARGUMENT, "strengths");
  edit(
      "an unknown mapper", [](auto* r) { r->mutable_mapper()->set_mapper("nope"); }, C::NOT_FOUND, "nope");
  edit(
      "a generator as the mapper", [](auto* r) { r->mutable_mapper()->set_mapper("tiny"); }, C::FAILED_PRECONDITION,
      "not a latent mapper");

  auto watch = [&](const char* what, std::string id, int64_t after, C code, const char* says) {
    t.push_back({"WatchJob", what,
                 [id, after](Stub* s) {
                   v1::WatchJobRequest r;
                   r.set_id(id);
                   r.set_after_seq(after);
                   return Watch(s, r);
                 },
                 code, says});
  };
  watch("no id", "", 0, C::INVALID_ARGUMENT, "id");
  watch("unknown job", "job-ffff", 0, C::NOT_FOUND, "job-ffff");
  watch("negative after_seq", "job-ffff", -1, C::INVALID_ARGUMENT, "after_seq");
  watch("id of 200 characters", std::string(200, 'j'), 0, C::INVALID_ARGUMENT, "128");

  t.push_back({"GetJob", "unknown job",
               [](Stub* s) {
                 v1::GetJobRequest r;
                 r.set_id("job-ffff");
                 return Unary(&Stub::GetJob, s, r);
               },
               C::NOT_FOUND, "job-ffff"});
  t.push_back({"CancelJob", "unknown job",
               [](Stub* s) {
                 v1::CancelJobRequest r;
                 r.set_id("job-ffff");
                 return Unary(&Stub::CancelJob, s, r);
               },
               C::NOT_FOUND, "job-ffff"});
  t.push_back({"ListJobs", "page_size of 10000",
               [](Stub* s) {
                 v1::ListJobsRequest r;
                 r.set_page_size(10000);
                 return Unary(&Stub::ListJobs, s, r);
               },
               C::INVALID_ARGUMENT, "page_size"});
  t.push_back({"ListJobs", "a forged page token",
               [](Stub* s) {
                 v1::ListJobsRequest r;
                 r.set_page_token("not-a-token");
                 return Unary(&Stub::ListJobs, s, r);
               },
               C::INVALID_ARGUMENT, "page_token"});
  t.push_back({"GetModel", "unknown model",
               [](Stub* s) {
                 v1::GetModelRequest r;
                 r.set_name("nope");
                 return Unary(&Stub::GetModel, s, r);
               },
               C::NOT_FOUND, "nope"});
  t.push_back({"DeleteModel", "a base model",
               [](Stub* s) {
                 v1::DeleteModelRequest r;
                 r.set_name("tiny");
                 return Unary(&Stub::DeleteModel, s, r);
               },
               C::FAILED_PRECONDITION, "adapted"});
  t.push_back({"DeleteModel", "a path",
               [](Stub* s) {
                 v1::DeleteModelRequest r;
                 r.set_name("../models");
                 return Unary(&Stub::DeleteModel, s, r);
               },
               C::INVALID_ARGUMENT, "name"});
  auto load_row = [&](const char* what, std::string name, C code, const char* says, bool also_unload) {
    t.push_back({"LoadModel", what,
                 [name](Stub* s) {
                   v1::LoadModelRequest r;
                   r.set_name(name);
                   return Unary(&Stub::LoadModel, s, r);
                 },
                 code, says});
    if (!also_unload) return;
    t.push_back({"UnloadModel", what,
                 [name](Stub* s) {
                   v1::UnloadModelRequest r;
                   r.set_name(name);
                   return Unary(&Stub::UnloadModel, s, r);
                 },
                 code, says});
  };
  auto promote_row = [&](const char* what, std::string snapshot, std::string name, C code, const char* says) {
    t.push_back({"PromoteSnapshot", what,
                 [snapshot, name](Stub* s) {
                   v1::PromoteSnapshotRequest r;
                   r.set_snapshot(snapshot);
                   r.set_name(name);
                   return Unary(&Stub::PromoteSnapshot, s, r);
                 },
                 code, says});
  };
  promote_row("an unknown snapshot", "tiny@3", "kept", C::NOT_FOUND, "tiny@3");
  promote_row("a model that is not a snapshot", "tiny", "kept", C::FAILED_PRECONDITION, "not a training snapshot");
  promote_row("a path as snapshot", "../x@3", "kept", C::INVALID_ARGUMENT, "snapshot");
  promote_row("a snapshot name as the new name", "tiny@3", "kept@3", C::INVALID_ARGUMENT, "name");
  promote_row("a step of zero", "tiny@0", "kept", C::INVALID_ARGUMENT, "MODEL@STEP");
  load_row("unknown model", "nope", C::NOT_FOUND, "nope", true);
  load_row("a path", "../models", C::INVALID_ARGUMENT, "name", true);
  load_row("an empty name", "", C::INVALID_ARGUMENT, "name", true);
  load_row("a model that fails to load", "broken", C::FAILED_PRECONDITION, "missing.pt", false);
  auto export_row = [&](const char* what, std::string name, int format, C code, const char* says) {
    t.push_back({"ExportModel", what,
                 [name, format](Stub* s) {
                   v1::ExportModelRequest r;
                   r.set_name(name);
                   r.set_format(static_cast<v1::ExportFormat>(format));
                   grpc::ClientContext c;
                   return Drain<v1::ExportModelChunk>(s->ExportModel(&c, r));
                 },
                 code, says});
  };
  export_row("unknown model", "nope", 1, C::NOT_FOUND, "nope");
  export_row("a path", "../models", 1, C::INVALID_ARGUMENT, "name");
  export_row("unknown format", "tiny", 9, C::INVALID_ARGUMENT, "format 9 is unknown");
  export_row("a model that failed to load", "broken", 1, C::FAILED_PRECONDITION, "missing.pt");
  auto import_row = [&](const char* what, std::string name, std::string filename, std::string sha256, C code,
                        const char* says) {
    t.push_back({"ImportModel", what,
                 [name, filename, sha256](Stub* s) {
                   grpc::ClientContext c;
                   v1::Model m;
                   auto w = s->ImportModel(&c, &m);
                   v1::ImportModelChunk chunk;
                   chunk.set_name(name);
                   chunk.set_kind(v1::MODEL_KIND_GENERATOR);
                   chunk.set_filename(filename);
                   chunk.set_total_bytes(4);
                   chunk.set_sha256(sha256);
                   chunk.set_data("abcd");
                   w->Write(chunk);
                   w->WritesDone();
                   return w->Finish();
                 },
                 code, says});
  };
  const std::string abcd_sha = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
  import_row("a name that exists", "tiny", "g.pt", abcd_sha, C::ALREADY_EXISTS, "exists");
  t.push_back({"ImportModel", "a domain past its limit",
               [abcd_sha](Stub* s) {
                 grpc::ClientContext c;
                 v1::Model m;
                 auto w = s->ImportModel(&c, &m);
                 v1::ImportModelChunk chunk;
                 chunk.set_name("new-model");
                 chunk.set_kind(v1::MODEL_KIND_GENERATOR);
                 chunk.set_filename("g.pt");
                 chunk.set_total_bytes(4);
                 chunk.set_sha256(abcd_sha);
                 chunk.set_domain(std::string(300, 'd'));
                 chunk.set_data("abcd");
                 w->Write(chunk);
                 w->WritesDone();
                 return w->Finish();
               },
               C::INVALID_ARGUMENT, "at most 256"});
  import_row("no sha256", "new-model", "g.pt", "", C::INVALID_ARGUMENT, "sha256");
  import_row("a sha256 mismatch", "new-model", "g.pt", std::string(64, 'f'), C::INVALID_ARGUMENT, "sha256 mismatch");
  import_row("bytes that are no generator", "new-model", "g.pt", abcd_sha, C::INVALID_ARGUMENT, "not a generator");
  // Bytes that are not a message of the method's type: INVALID_ARGUMENT naming the type
  // (gRPC's own answer would be UNIMPLEMENTED, as if the method did not exist).
  auto raw = [&](const char* rpc, const char* what, std::string bytes, const char* type) {
    t.push_back(
        {rpc, what, [channel, rpc, bytes](Stub*) { return RawCall(channel, rpc, bytes); }, C::INVALID_ARGUMENT, type});
  };
  std::mt19937 rng(7);
  std::string noise(64, '\0');
  for (char& ch : noise) ch = static_cast<char>(rng());
  noise[0] = '\x0f';  // field 1 with wire type 7, which does not exist
  raw("GenerateSamples", "random bytes", noise, "could not be parsed as ganserve.v1.GenerateSamplesRequest");
  raw("AdaptDomain", "invalid UTF-8 in a string field (model)", std::string("\x12\x02\xc3\x28", 4),
      "could not be parsed as ganserve.v1.AdaptDomainRequest");
  raw("GetJob", "a truncated varint (the id's length)", std::string("\x0a\x80", 2),
      "could not be parsed as ganserve.v1.GetJobRequest");
  raw("InvertImage", "a length past the end",
      std::string("\x0a\x05"
                  "ab",
                  4),
      "could not be parsed as ganserve.v1.InvertImageRequest");
  return t;
}

TEST(BadInputTest, EveryRpcAnswersWithTheDocumentedCodeAndKeepsServing) {
  TestServer server(::testing::TempDir() + "/bad_input_test_" + std::to_string(::getpid()));
  auto stub = server.Stub();
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  int rows = 0;
  for (const Case& c : Table(server.channel())) {
    SCOPED_TRACE(std::string(c.rpc) + ": " + c.input);
    grpc::Status st = c.call(stub.get());
    EXPECT_EQ(st.error_code(), c.code) << st.error_message();
    EXPECT_NE(st.error_message().find(c.says), std::string::npos)
        << "message '" << st.error_message() << "' lacks '" << c.says << "'";
    grpc::ClientContext hc;
    grpc::health::v1::HealthCheckRequest hreq;
    grpc::health::v1::HealthCheckResponse hresp;
    ASSERT_TRUE(health->Check(&hc, hreq, &hresp).ok());
    ASSERT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    ++rows;
  }
  // Unparseable requests are counted (four raw-bytes rows above).
  const std::string metrics = HttpGet(server.metrics_port(), "/metrics");
  EXPECT_NE(metrics.find("ganserve_rejected_requests_total{reason=\"unparseable_request\"} 4"), std::string::npos)
      << metrics.substr(0, 2000);
  std::printf("%d bad-input cases, server healthy after each\n", rows);
}

// The same contract over HTTP/JSON: each row names the gRPC status the gateway must
// answer (as {"error": {"status": ...}}) with the HTTP status google.rpc maps it to.
struct HttpCase {
  const char* input;
  const char* method;
  std::string path;
  std::string body;
  int http_status;
  const char* status;  // gRPC code name in the error body
  const char* says;
  httplib::Headers headers = {};
};

std::vector<HttpCase> HttpTable() {
  const std::string gen = "/v1/models/tiny:generate";
  core::Rgb8Image small;
  small.width = small.height = 8;
  small.pixels.assign(8 * 8 * 3, 200);
  const std::string png64 = absl::Base64Escape(*core::EncodePng(small));
  return {
      {"malformed JSON", "POST", gen, R"({"seeds": [1,)", 400, "INVALID_ARGUMENT", "not a GenerateSamplesRequest"},
      {"an unknown field", "POST", gen, R"({"seeds": [1], "noSuchField": 2})", 400, "INVALID_ARGUMENT", "noSuchField"},
      {"a wrong type", "POST", gen, R"({"seeds": "one"})", 400, "INVALID_ARGUMENT", "seeds"},
      {"an unknown enum name", "POST", gen, R"({"seeds": [1], "format": "IMAGE_FORMAT_GIF"})", 400, "INVALID_ARGUMENT",
       "format"},
      {"a JSON array, not an object", "POST", gen, "[1, 2]", 400, "INVALID_ARGUMENT", "GenerateSamplesRequest"},
      {"an out-of-range count", "POST", gen, R"({"count": 1000000000})", 400, "INVALID_ARGUMENT", "count"},
      {"an unknown model in the path", "POST", "/v1/models/nope:generate", R"({"seeds": [1]})", 404, "NOT_FOUND",
       "no model named 'nope'"},
      {"a model name with a space", "GET", "/v1/models/bad%20name", "", 400, "INVALID_ARGUMENT", "model"},
      {"an unknown route", "GET", "/v1/nothing", "", 404, "NOT_FOUND", "no API route"},
      {"a verb the route does not take", "DELETE", gen, "", 405, "UNIMPLEMENTED", "not allowed"},
      {"a body on a route that takes none", "POST", "/v1/jobs/job-nope:cancel", R"({"id": "job-other"})", 400,
       "INVALID_ARGUMENT", "takes no body"},
      {"a query parameter of the wrong type", "GET", "/v1/jobs?pageSize=many", "", 400, "INVALID_ARGUMENT", "pageSize"},
      {"an unknown query parameter", "GET", "/v1/jobs?colour=red", "", 400, "INVALID_ARGUMENT", "colour"},
      {"an unknown job", "GET", "/v1/jobs/job-nope", "", 404, "NOT_FOUND", "job-nope"},
      {"a preview of an unknown job", "GET", "/v1/jobs/job-nope/previews/1.png", "", 404, "NOT_FOUND", "job-nope"},
      {"a preview set that does not exist", "GET", "/v1/jobs/job-nope/previews/1.png?set=all", "", 400,
       "INVALID_ARGUMENT", "set must be"},
      {"a notify_url on a server without a webhook secret", "POST", "/v1/jobs:invert",
       R"({"model": "tiny", "image": "AAAA", "notifyUrl": "https://example.com/hook"})", 400, "FAILED_PRECONDITION",
       "--webhook_secret_file"},
      {"a mapper without text", "POST", "/v1/models/tiny:trainMapper", R"({"idLambda": 0})", 400, "INVALID_ARGUMENT",
       "text is required"},
      {"a mapper with the official id_lambda", "POST", "/v1/models/tiny:trainMapper", R"({"text": "a smile"})", 400,
       "FAILED_PRECONDITION", "model_ir_se50.pth"},
      {"one landmark", "POST", "/v1/jobs:invert",
       R"({"model": "tiny", "image": ")" + png64 + R"(", "landmarks": [{"x": 1, "y": 2}]})", 400, "INVALID_ARGUMENT",
       "68 points"},
      {"the encoder method without an encoder", "POST", "/v1/jobs:invert",
       R"({"model": "tiny", "image": ")" + png64 + R"(", "method": "INVERT_METHOD_ENCODER"})", 400,
       "FAILED_PRECONDITION", "ImportModel kind ENCODER"},
      {"an edit with an unknown mapper", "POST", "/v1/models/tiny:edit",
       R"({"seeds": [1], "mapper": {"mapper": "nope"}})", 404, "NOT_FOUND", "nope"},
      {"an import line that is not JSON", "POST", "/v1/models:import", "{\"name\": \"x\"}\nnot json\n", 400,
       "INVALID_ARGUMENT", "ImportModelChunk"},
      {"a body over the server's message limit", "POST", gen, std::string((64u << 20) + 16, ' '), 413, "", ""},
  };
}

TEST(BadInputTest, HttpAnswersTheSameCodesAsGrpcAndKeepsServing) {
  TestServerOptions o;
  o.http = true;
  TestServer server(::testing::TempDir() + "/bad_input_http_" + std::to_string(::getpid()), o);
  httplib::Client c("127.0.0.1", server.http_port());
  c.set_read_timeout(60, 0);
  int rows = 0;
  for (const HttpCase& row : HttpTable()) {
    SCOPED_TRACE(std::string(row.method) + " " + row.path.substr(0, 80) + ": " + row.input);
    httplib::Request req;
    req.method = row.method;
    req.path = row.path;
    req.headers = row.headers;
    req.body = row.body;
    if (!row.body.empty()) req.set_header("Content-Type", "application/json");
    auto res = c.send(req);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, row.http_status) << res->body.substr(0, 500);
    if (*row.status != '\0') {
      EXPECT_NE(res->body.find(std::string("\"status\": \"") + row.status + "\""), std::string::npos) << res->body;
      EXPECT_NE(res->body.find(row.says), std::string::npos) << "body '" << res->body << "' lacks '" << row.says << "'";
    }
    auto health = c.Get("/v1/models");
    ASSERT_TRUE(health);
    ASSERT_EQ(health->status, 200);
    ++rows;
  }
  std::printf("%d bad HTTP inputs, server healthy after each\n", rows);
}

TEST(BadInputTest, HttpTokensAreCheckedAsOverGrpc) {
  TestServerOptions o;
  o.http = true;
  o.auth_tokens = "reader-token-0123456789 inference\n";
  TestServer server(::testing::TempDir() + "/bad_input_http_auth_" + std::to_string(::getpid()), o);
  httplib::Client c("127.0.0.1", server.http_port());
  struct Row {
    const char* input;
    httplib::Headers headers;
    int http_status;
    const char* says;
  };
  for (const Row& row : std::vector<Row>{
           {"no token", {}, 401, "bearer token"},
           {"a wrong token", {{"Authorization", "Bearer wrong-token-0123456789"}}, 401, "token"},
           {"not a bearer header", {{"Authorization", "Basic dXNlcjpwYXNz"}}, 401, "Bearer TOKEN"},
           {"a token without the scope", {{"Authorization", "Bearer reader-token-0123456789"}}, 403, "scope"},
       }) {
    SCOPED_TRACE(row.input);
    auto res = c.Post("/v1/models:rescan", row.headers, "", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, row.http_status) << res->body;
    EXPECT_NE(res->body.find(row.says), std::string::npos) << res->body;
  }
  auto ok = c.Get("/v1/models", {{"Authorization", "Bearer reader-token-0123456789"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

}  // namespace
}  // namespace ganserve::testing
