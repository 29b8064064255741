import TFModel

extension TrainerConfig {
    /// Every setting of this configuration as the JSON `parse` reads, nothing left to a default:
    /// `parse(c.resolvedJSON.text) == c`. Keys in the order `TrainerConfig`'s documentation lists
    /// them; `model` only for `arch: "custom"`, `non_finite_lr_factor` only for `reduce_lr`, `distributed` only when set.
    public var resolvedJSON: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("arch", .string(model.arch))]
        if model.arch == "custom" {
            members.append(("model", .object([
                ("embed_dim", int(model.embedDim)), ("depth", int(model.depth)), ("num_heads", int(model.numHeads)),
                ("mlp_hidden_dim", int(model.mlpHiddenDim)), ("img_size", int(model.imgSize)), ("patch_size", int(model.patchSize)),
            ])))
        }
        members += [
            ("embedding_size", int(model.embeddingSize)), ("mask_ratio", float(model.maskRatio)),
            ("drop_path_rate", float(model.dropPathRate)), ("se_gate", .bool(model.seGate)),
            ("num_classes", int(numClasses)), ("sample_rate", .number(sampleRate)),
            ("margin", .object([
                ("s", float(margin.scale)), ("m1", float(margin.m1)), ("m2", float(margin.m2)), ("m3", float(margin.m3)),
                ("interclass_filtering_threshold", float(margin.interclassFilteringThreshold)),
            ])),
            ("optimizer", .object([
                ("name", .string(optimizer.rawValue)), ("lr", .number(learningRate)), ("weight_decay", .number(weightDecay)),
                ("betas", .array([.number(betas.0), .number(betas.1)])), ("eps", .number(eps)), ("momentum", .number(momentum)),
                ("decay", .string(decay == .everyTensor ? "all" : "exempt_norms_biases_tokens")),
            ])),
            ("schedule", .object([("warmup_steps", int(warmupSteps)), ("max_steps", int(maxSteps))])),
            ("clip_grad_norm", clipGradNorm.map(JSONValue.number) ?? .null),
            ("dpap", dpap.map { .object([("enabled", .bool(true)), ("top_k", int($0.topK)), ("probability", .number($0.probability)),
                                         ("alpha", .number($0.alpha))]) } ?? .object([("enabled", .bool(false))])),
            ("ehsm", ehsm.map { .object([("enabled", .bool(true)), ("mode", .string($0.mode == .official ? "official" : "paper")),
                                         ("entropy", .string($0.entropy == .patchStd ? "std" : "gaussian")), ("gamma", float($0.gamma)),
                                         ("top_k", $0.topK.map(int) ?? .null)]) } ?? .object([("enabled", .bool(false))])),
            ("batch_size", int(batchSize)), ("gradient_accumulation", int(gradientAccumulation)),
            ("seed", .number(Double(seed))), ("threads", int(threads)),
        ]
        switch nonFinite {
        case .refuse: members.append(("non_finite", .string("refuse")))
        case .skip: members.append(("non_finite", .string("skip")))
        case .reduceLearningRate(let factor): members += [("non_finite", .string("reduce_lr")), ("non_finite_lr_factor", .number(factor))]
        }
        if let distributed {
            members.append(("distributed", .object([("backend", .string("mpi")), ("checksum_every", int(distributed.checksumEvery))])))
        }
        return .object(members)
    }
}

private func int(_ n: Int) -> JSONValue { .number(Double(n)) }

/// A Float setting as the shortest decimal that reads back to it (0.05, not 0.05000000074505806).
private func float(_ x: Float) -> JSONValue { .number(Double(x.description) ?? Double(x)) }
