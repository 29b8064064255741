import TFTrain
import XCTest

/// `TrainerConfig.resolvedJSON`: every setting written out, read back by `parse` to the same
/// configuration, for configurations that touch every branch of the parser.
final class TrainerConfigJSONTests: XCTestCase {
    static let configs = [
        #"{"num_classes": 10}"#,
        #"{"arch": "vit_s_dp005_mask_0", "num_classes": 85742, "batch_size": 512, "threads": 2}"#,
        #"{"num_classes": 7, "optimizer": {"name": "sgd"}, "schedule": {"warmup_steps": 3, "max_steps": 40}}"#,
        #"{"num_classes": 7, "optimizer": {"name": "sgd", "lr": 0.05, "weight_decay": 1e-4, "momentum": 0.8, "decay": "exempt_norms_biases_tokens"}}"#,
        #"{"num_classes": 7, "optimizer": {"betas": [0.8, 0.95], "eps": 1e-6, "lr": 3e-4, "weight_decay": 0.05}}"#,
        #"{"arch": "custom", "model": {"embed_dim": 48, "depth": 2, "num_heads": 3, "mlp_hidden_dim": 100, "img_size": 64, "patch_size": 8},"#
            + #" "embedding_size": 16, "mask_ratio": 0.15, "drop_path_rate": 0.07, "num_classes": 3, "dpap": {"top_k": 5, "probability": 0.3, "alpha": 0.5}}"#,
        #"{"arch": "custom", "model": {"embed_dim": 32, "depth": 1, "num_heads": 2}, "num_classes": 3, "se_gate": false, "dpap": {"enabled": false}}"#,
        #"{"num_classes": 5, "dpap": {"enabled": false}, "ehsm": {"enabled": false}}"#,
        #"{"num_classes": 5, "ehsm": {"mode": "paper", "entropy": "gaussian", "gamma": 2.5, "top_k": 12}}"#,
        #"{"num_classes": 5, "non_finite": "reduce_lr", "non_finite_lr_factor": 0.25}"#,
        #"{"num_classes": 5, "non_finite": "skip", "clip_grad_norm": null}"#,
        #"{"num_classes": 5, "clip_grad_norm": 1.5, "sample_rate": 0.3, "seed": 123456789012, "gradient_accumulation": 1}"#,
        #"{"num_classes": 5, "batch_size": 16, "gradient_accumulation": 4}"#,
        #"{"num_classes": 5, "margin": {"s": 30, "m1": 1, "m2": 0, "m3": 0.35}}"#,
        #"{"num_classes": 5, "margin": {"s": 64, "m1": 0.9, "m2": 0.4, "m3": 0.15, "interclass_filtering_threshold": 0.2}}"#,
        #"{"num_classes": 5, "margin": {"m1": 1.0, "m2": 0.3, "m3": -0.1}}"#,
    ]

    func testResolvedJSONReadsBackToTheSameConfiguration() throws {
        for text in Self.configs {
            let config = try TrainerConfig.parse(text)
            let resolved = config.resolvedJSON
            XCTAssertEqual(try TrainerConfig.parse(resolved.text), config, text)
            // A fixed point: the resolved form of the resolved form is itself.
            XCTAssertEqual(try TrainerConfig.parse(resolved.text).resolvedJSON, resolved, text)
            XCTAssertEqual(try TrainerConfig.parse(resolved.prettyText), config, text)
        }
    }

    func testEveryKeyIsWrittenOut() throws {
        guard case .object(let members) = try TrainerConfig.parse(#"{"num_classes": 10}"#).resolvedJSON else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.key), [
            "arch", "embedding_size", "mask_ratio", "drop_path_rate", "se_gate", "num_classes", "sample_rate", "margin",
            "optimizer", "schedule", "clip_grad_norm", "dpap", "ehsm", "batch_size", "gradient_accumulation", "seed",
            "threads", "non_finite",
        ])
        let text = try TrainerConfig.parse(#"{"num_classes": 10}"#).resolvedJSON.text
        for fragment in [#""betas":[0.9,0.999]"#, #""eps":1e-08"#, #""decay":"all""#, #""top_k":null"#, #""mask_ratio":0.1"#,
                         #""schedule":{"warmup_steps":0,"max_steps":1000}"#, #""clip_grad_norm":5"#] {
            XCTAssertTrue(text.contains(fragment), "\(fragment) in \(text)")
        }
        XCTAssertTrue(try TrainerConfig.parse(#"{"num_classes": 10, "clip_grad_norm": null}"#).resolvedJSON.text.contains(#""clip_grad_norm":null"#))
    }

    func testEqualityComparesSettingsNotText() throws {
        XCTAssertEqual(try TrainerConfig.parse(#"{"num_classes": 10}"#), try TrainerConfig.parse(#"{"num_classes": 10, "seed": 2048, "threads": 1}"#))
        XCTAssertNotEqual(try TrainerConfig.parse(#"{"num_classes": 10}"#), try TrainerConfig.parse(#"{"num_classes": 10, "optimizer": {"betas": [0.9, 0.99]}}"#))
        XCTAssertNotEqual(try TrainerConfig.parse(#"{"num_classes": 10}"#), try TrainerConfig.parse(#"{"num_classes": 10, "clip_grad_norm": null}"#))
    }
}
