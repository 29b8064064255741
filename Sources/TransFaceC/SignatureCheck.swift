import CTransFace

/// Compile-time check that every exported function has exactly the signature declared in
/// include/transface.h: `same` only type-checks when both function types are identical.
/// Never called; a drift between header and implementation fails the build. The ABI test
/// checks that this list, the header and the library's exports agree.
private func same<T>(_ declared: T, _ implemented: T) {}

func checkSignaturesAgainstHeader() {
    same(CTransFace.transface_builder_build, TransFaceC.transface_builder_build)
    same(CTransFace.transface_builder_create, TransFaceC.transface_builder_create)
    same(CTransFace.transface_builder_free, TransFaceC.transface_builder_free)
    same(CTransFace.transface_builder_init_weights, TransFaceC.transface_builder_init_weights)
    same(CTransFace.transface_builder_save, TransFaceC.transface_builder_save)
    same(CTransFace.transface_builder_set_metadata, TransFaceC.transface_builder_set_metadata)
    same(CTransFace.transface_builder_set_preprocess, TransFaceC.transface_builder_set_preprocess)
    same(CTransFace.transface_builder_set_tensor, TransFaceC.transface_builder_set_tensor)
    same(CTransFace.transface_builder_tensor_count, TransFaceC.transface_builder_tensor_count)
    same(CTransFace.transface_builder_tensor_info, TransFaceC.transface_builder_tensor_info)
    same(CTransFace.transface_compare, TransFaceC.transface_compare)
    same(CTransFace.transface_config_preset, TransFaceC.transface_config_preset)
    same(CTransFace.transface_config_preset_count, TransFaceC.transface_config_preset_count)
    same(CTransFace.transface_config_preset_name, TransFaceC.transface_config_preset_name)
    same(CTransFace.transface_context_create, TransFaceC.transface_context_create)
    same(CTransFace.transface_context_default_params, TransFaceC.transface_context_default_params)
    same(CTransFace.transface_context_free, TransFaceC.transface_context_free)
    same(CTransFace.transface_embed, TransFaceC.transface_embed)
    same(CTransFace.transface_embed_with_patches, TransFaceC.transface_embed_with_patches)
    same(CTransFace.transface_format_version, TransFaceC.transface_format_version)
    same(CTransFace.transface_last_error, TransFaceC.transface_last_error)
    same(CTransFace.transface_load_default_params, TransFaceC.transface_load_default_params)
    same(CTransFace.transface_model_embedding_size, TransFaceC.transface_model_embedding_size)
    same(CTransFace.transface_model_free, TransFaceC.transface_model_free)
    same(CTransFace.transface_model_get_config, TransFaceC.transface_model_get_config)
    same(CTransFace.transface_model_get_preprocess, TransFaceC.transface_model_get_preprocess)
    same(CTransFace.transface_model_load, TransFaceC.transface_model_load)
    same(CTransFace.transface_model_metadata_at, TransFaceC.transface_model_metadata_at)
    same(CTransFace.transface_model_metadata_count, TransFaceC.transface_model_metadata_count)
    same(CTransFace.transface_model_metadata_get, TransFaceC.transface_model_metadata_get)
    same(CTransFace.transface_model_read_tensor, TransFaceC.transface_model_read_tensor)
    same(CTransFace.transface_model_tensor_count, TransFaceC.transface_model_tensor_count)
    same(CTransFace.transface_model_tensor_info, TransFaceC.transface_model_tensor_info)
    same(CTransFace.transface_status_string, TransFaceC.transface_status_string)
    same(CTransFace.transface_version_number, TransFaceC.transface_version_number)
    same(CTransFace.transface_version_string, TransFaceC.transface_version_string)
}

func checkImageSignaturesAgainstHeader() {
}

func checkDataSignaturesAgainstHeader() {
}

func checkEvalSignaturesAgainstHeader() {
}

func checkTrainSignaturesAgainstHeader() {
}
