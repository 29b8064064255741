import CTransFace

/// Compile-time check that every exported function has exactly the signature declared in
/// include/transface.h: `same` only type-checks when both function types are identical.
/// Never called; a drift between header and implementation fails the build. The ABI test
/// checks that this list, the header and the library's exports agree.
private func same<T>(_ declared: T, _ implemented: T) {}

func checkSignaturesAgainstHeader() {
    same(CTransFace.transface_gallery_default_params, TransFaceC.transface_gallery_default_params)
    same(CTransFace.transface_gallery_params_init, TransFaceC.transface_gallery_params_init)
    same(CTransFace.transface_gallery_open, TransFaceC.transface_gallery_open)
    same(CTransFace.transface_gallery_close, TransFaceC.transface_gallery_close)
    same(CTransFace.transface_gallery_enrol, TransFaceC.transface_gallery_enrol)
    same(CTransFace.transface_gallery_remove, TransFaceC.transface_gallery_remove)
    same(CTransFace.transface_gallery_count, TransFaceC.transface_gallery_count)
    same(CTransFace.transface_gallery_identity_count, TransFaceC.transface_gallery_identity_count)
    same(CTransFace.transface_gallery_identity, TransFaceC.transface_gallery_identity)
    same(CTransFace.transface_gallery_search, TransFaceC.transface_gallery_search)
    same(CTransFace.transface_detector_default_params, TransFaceC.transface_detector_default_params)
    same(CTransFace.transface_detector_params_init, TransFaceC.transface_detector_params_init)
    same(CTransFace.transface_detector_load, TransFaceC.transface_detector_load)
    same(CTransFace.transface_detector_free, TransFaceC.transface_detector_free)
    same(CTransFace.transface_detect, TransFaceC.transface_detect)
    same(CTransFace.transface_detect_main_face, TransFaceC.transface_detect_main_face)
    same(CTransFace.transface_embed_photo, TransFaceC.transface_embed_photo)
    same(CTransFace.transface_context_params_init, TransFaceC.transface_context_params_init)
    same(CTransFace.transface_decode_params_init, TransFaceC.transface_decode_params_init)
    same(CTransFace.transface_ijb_params_init, TransFaceC.transface_ijb_params_init)
    same(CTransFace.transface_load_params_init, TransFaceC.transface_load_params_init)
    same(CTransFace.transface_pack_params_init, TransFaceC.transface_pack_params_init)
    same(CTransFace.transface_verify_params_init, TransFaceC.transface_verify_params_init)
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

func checkConvertSignaturesAgainstHeader() {
    same(CTransFace.transface_convert_default_params, TransFaceC.transface_convert_default_params)
    same(CTransFace.transface_convert_infer_config, TransFaceC.transface_convert_infer_config)
    same(CTransFace.transface_convert_params_init, TransFaceC.transface_convert_params_init)
    same(CTransFace.transface_convert_state_dict, TransFaceC.transface_convert_state_dict)
}

func checkImageSignaturesAgainstHeader() {
    same(CTransFace.transface_align_face, TransFaceC.transface_align_face)
    same(CTransFace.transface_alignment_template, TransFaceC.transface_alignment_template)
    same(CTransFace.transface_decode_default_params, TransFaceC.transface_decode_default_params)
    same(CTransFace.transface_decode_file, TransFaceC.transface_decode_file)
    same(CTransFace.transface_decode_image, TransFaceC.transface_decode_image)
    same(CTransFace.transface_estimate_similarity, TransFaceC.transface_estimate_similarity)
    same(CTransFace.transface_warp_affine, TransFaceC.transface_warp_affine)
}

func checkDataSignaturesAgainstHeader() {
    same(CTransFace.transface_bin_close, TransFaceC.transface_bin_close)
    same(CTransFace.transface_bin_image, TransFaceC.transface_bin_image)
    same(CTransFace.transface_bin_issame, TransFaceC.transface_bin_issame)
    same(CTransFace.transface_bin_open, TransFaceC.transface_bin_open)
    same(CTransFace.transface_bin_pair_count, TransFaceC.transface_bin_pair_count)
    same(CTransFace.transface_bin_write, TransFaceC.transface_bin_write)
    same(CTransFace.transface_pack_default_params, TransFaceC.transface_pack_default_params)
    same(CTransFace.transface_recordio_close, TransFaceC.transface_recordio_close)
    same(CTransFace.transface_recordio_count, TransFaceC.transface_recordio_count)
    same(CTransFace.transface_recordio_num_classes, TransFaceC.transface_recordio_num_classes)
    same(CTransFace.transface_recordio_open, TransFaceC.transface_recordio_open)
    same(CTransFace.transface_recordio_pack, TransFaceC.transface_recordio_pack)
    same(CTransFace.transface_recordio_read, TransFaceC.transface_recordio_read)
}

func checkEvalSignaturesAgainstHeader() {
    same(CTransFace.transface_evaluate_bin, TransFaceC.transface_evaluate_bin)
    same(CTransFace.transface_evaluate_pairs, TransFaceC.transface_evaluate_pairs)
    same(CTransFace.transface_evaluate_ijb, TransFaceC.transface_evaluate_ijb)
    same(CTransFace.transface_ijb_default_params, TransFaceC.transface_ijb_default_params)
    same(CTransFace.transface_pair_distances, TransFaceC.transface_pair_distances)
    same(CTransFace.transface_roc_curve, TransFaceC.transface_roc_curve)
    same(CTransFace.transface_tar_at_far, TransFaceC.transface_tar_at_far)
    same(CTransFace.transface_verify_default_params, TransFaceC.transface_verify_default_params)
    same(CTransFace.transface_verify_distances, TransFaceC.transface_verify_distances)
    same(CTransFace.transface_verify_embeddings, TransFaceC.transface_verify_embeddings)
    same(CTransFace.transface_verify_roc, TransFaceC.transface_verify_roc)
}

func checkTrainSignaturesAgainstHeader() {
    same(CTransFace.transface_amplitude_mix, TransFaceC.transface_amplitude_mix)
    same(CTransFace.transface_trainer_create, TransFaceC.transface_trainer_create)
    same(CTransFace.transface_trainer_resume, TransFaceC.transface_trainer_resume)
    same(CTransFace.transface_trainer_free, TransFaceC.transface_trainer_free)
    same(CTransFace.transface_trainer_step, TransFaceC.transface_trainer_step)
    same(CTransFace.transface_trainer_save_checkpoint, TransFaceC.transface_trainer_save_checkpoint)
    same(CTransFace.transface_trainer_export_model, TransFaceC.transface_trainer_export_model)
    same(CTransFace.transface_trainer_tensor_size, TransFaceC.transface_trainer_tensor_size)
    same(CTransFace.transface_trainer_read_tensor, TransFaceC.transface_trainer_read_tensor)
    same(CTransFace.transface_trainer_get_info, TransFaceC.transface_trainer_get_info)
}
