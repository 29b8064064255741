// The public header compiles as C++ (-std=c++17 -Wall -Wextra -pedantic -Werror) and links:
// extern "C" linkage, no C-only constructs. Calls a few functions and prints "N passed, M failed".
#include "transface.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace {

int passed = 0, failed = 0;

void check(bool ok, const char *what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::fprintf(stderr, "FAIL %s: %s\n", what, transface_last_error());
    }
}

// RAII owners: the *_free functions accept NULL, so they work as deleters as is.
using Builder = std::unique_ptr<transface_builder, decltype(&transface_builder_free)>;
using Model = std::unique_ptr<transface_model, decltype(&transface_model_free)>;
using Context = std::unique_ptr<transface_context, decltype(&transface_context_free)>;

}  // namespace

int main() {
    check(transface_version_number() == TRANSFACE_VERSION_NUMBER, "version number");
    check(std::strcmp(transface_status_string(TRANSFACE_NOT_FOUND), "") != 0, "status string");

    transface_config config{};
    config.struct_size = sizeof config;
    check(transface_config_preset("vit_t", 0, &config) == TRANSFACE_OK && config.embedding_size == 512, "preset");
    check(transface_config_preset("no-such-preset", 0, &config) == TRANSFACE_NOT_FOUND, "unknown preset");

    // a tiny model built in memory
    config = transface_config{};
    config.struct_size = sizeof config;
    config.img_size = 112;
    config.patch_size = 9;
    config.in_channels = 3;
    config.embed_dim = 16;
    config.depth = 1;
    config.num_heads = 2;
    config.mlp_hidden_dim = 32;
    config.embedding_size = 8;
    transface_builder *raw_builder = nullptr;
    check(transface_builder_create(&config, &raw_builder) == TRANSFACE_OK, "builder_create");
    Builder builder(raw_builder, &transface_builder_free);
    check(transface_builder_init_weights(builder.get(), 42) == TRANSFACE_OK, "init_weights");
    transface_model *raw_model = nullptr;
    check(transface_builder_build(builder.get(), &raw_model) == TRANSFACE_OK, "builder_build");
    Model model(raw_model, &transface_model_free);

    transface_context_params params = transface_context_default_params();
    transface_context *raw_context = nullptr;
    check(transface_context_create(model.get(), &params, &raw_context) == TRANSFACE_OK, "context_create");
    Context context(raw_context, &transface_context_free);

    const int32_t side = 112;
    const size_t e = static_cast<size_t>(transface_model_embedding_size(model.get()));
    std::vector<uint8_t> images(2 * side * side * 3);
    for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 31 % 253);
    std::vector<float> embeddings(2 * e);
    check(transface_embed(context.get(), images.data(), 2, side, side, TRANSFACE_EMBED_FLIP, embeddings.data(),
                          embeddings.size()) == TRANSFACE_OK, "embed");
    float cosine = 0;
    check(transface_compare(embeddings.data(), embeddings.data(), e, &cosine) == TRANSFACE_OK &&
              std::fabs(cosine - 1.0f) < 1e-6f, "compare");

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
