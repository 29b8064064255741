// swift-tools-version:6.0
import PackageDescription

#if arch(x86_64)
/// Kernels target Haswell-class x86-64 (AVX2, FMA: every x86 server CPU since 2013); their
/// AVX-512 twins (x86-64-v4: AVX-512 F/BW/CD/DQ/VL) run only where the CPU has it.
let kernelCPUFlags = ["-target-cpu", "haswell"]
let avx512CPUFlags = ["-target-cpu", "skylake-avx512"]
let hnswCPUFlags = ["-mavx2", "-mfma"]
#else
let kernelCPUFlags: [String] = []
let avx512CPUFlags: [String] = []
let hnswCPUFlags: [String] = []
#endif

/// libtransface: TransFace (ICCV 2023) face recognition on the CPU, from Swift and through one C ABI.
let package = Package(
    name: "libtransface",
    products: [
        // The embeddable library: libtransface.so, declared by include/transface.h.
        .library(name: "transface", type: .dynamic, targets: ["TransFaceC"]),
        .library(name: "TFModel", targets: ["TFModel"]),
        // Fuzzing harnesses of every parser of outside input (Tests/Fuzz/run.sh); a replayer when built normally.
        .executable(name: "transface-fuzz", targets: ["TransFaceFuzz"]),
        // The command-line tool `transface` (the product is named transface-cli because libtransface.so
        // takes the name "transface"): train, eval, embed, compare, align, pack, inspect, convert, patches, bench, detect, gallery.
        .executable(name: "transface-cli", targets: ["TransFaceCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libfftw3-dev, libprotobuf-c-dev, zlib1g-dev, libdnnl-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f"),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg"),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16"),
        .systemLibrary(name: "CJSON", pkgConfig: "libcjson"),
        // libzip (Debian: libzip-dev), for torch.save and .npz files in the converter only.
        .systemLibrary(name: "CZip", pkgConfig: "libzip"),
        // The public header, imported by the export layer so that signatures are checked.
        .systemLibrary(name: "CTransFace", path: "include"),
        // protoc-c output for include/transface.proto, generated once and committed.
        .target(
            name: "TransFaceProto",
            cSettings: [.unsafeFlags(["-fvisibility=hidden"])],
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        .target(name: "TFCore", dependencies: ["CBLAS", "CZlib"]),
        // The matmul backend: oneDNN's matmul primitive on pre-packed weights (Debian libdnnl-dev),
        // behind a thin C layer; oneDNN's OpenMP runtime (libgomp) is held to one thread per call.
        .target(
            name: "CDNNLMatmul",
            cSettings: [.unsafeFlags(["-fvisibility=hidden"])],
            linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]
        ),
        // Kernels are optimised in debug builds too (they work on raw pointers, so nothing is
        // lost to checks), which keeps debug test runs of real model sizes fast; on x86-64 they
        // use AVX2 + FMA (ViTForward refuses to run on a CPU without them).
        .target(name: "TFKernels", dependencies: ["TFCore", "CDNNLMatmul"], swiftSettings: [.unsafeFlags(["-O"] + kernelCPUFlags)]),
        // Attention (with its softmax, the compute-bound kernel of our own) built a second time for
        // AVX-512 from the same files (symbolic links into TFKernels, with the elementwise helpers
        // it calls); TFModel picks a build per forward pass from the CPU (TRANSFACE_ISA caps it).
        .target(name: "TFKernelsAVX512", dependencies: ["TFCore"], swiftSettings: [.unsafeFlags(["-O"] + avx512CPUFlags), .define("TF_AVX512")]),
        .target(name: "TFModel", dependencies: ["TFCore", "TFKernels", "TFKernelsAVX512", "TransFaceProto", "CProtobufC"]),
        // Images: decoding (libjpeg-turbo, libpng, PGM/PPM) and 5-point alignment.
        .target(name: "TFImage", dependencies: ["TFCore", "CTurboJPEG", "CPNG"]),
        // Datasets: RecordIO, image folders, lists, pairs, .bin sets, the threaded loader (images
        // are decoded through a function the caller passes).
        .target(name: "TFData", dependencies: ["TFCore"]),
        // Evaluation: k-fold verification, TAR@FAR, ROC, IJB 1:1 (faces prepared by a caller's function).
        .target(name: "TFEval", dependencies: ["TFCore", "TFModel", "TFData"]),
        // The wiring: TFImage's decoder and alignment plugged into the loader, packer and evaluation.
        .target(name: "TFWiring", dependencies: ["TFCore", "TFImage", "TFData", "TFModel", "TFEval"]),
        // Training: backward passes, losses, DPAP (FFTW), EHSM, optimizers, trainer.
        // Open MPI loaded at run time (dlopen of libmpi.so.40; no build-time MPI, hidden symbols).
        .target(name: "CMPIShim", cSettings: [.unsafeFlags(["-fvisibility=hidden"])]),
        // Collectives for distributed training: MPI_COMM_WORLD through CMPIShim, or one process.
        .target(name: "TFDistributed", dependencies: ["TFCore", "CMPIShim"]),
        .target(name: "TFTrain", dependencies: ["TFCore", "TFModel", "TFConvert", "TFDistributed", "CFFTW", "CJSON"]),
        .target(name: "TransFaceC", dependencies: ["TFCore", "TFKernels", "TFModel", "TFImage", "TFData", "TFEval", "TFWiring", "TFTrain", "TFConvert", "TFDetect", "TFGallery", "CTransFace"]),
        // The 1:N gallery: a crash-safe log file of enrolled embeddings, exact search (sgemm).
        // hnswlib (Debian libhnswlib-dev, header-only) behind a C face, for the gallery's approximate index.
        .target(name: "CHNSW", cxxSettings: [.unsafeFlags(["-fvisibility=hidden", "-O2"] + hnswCPUFlags)]),
        .target(name: "TFGallery", dependencies: ["TFCore", "TFModel", "CBLAS", "CHNSW"], swiftSettings: [.unsafeFlags(["-O"] + kernelCPUFlags)]),
        .executableTarget(name: "TFGalleryBench", dependencies: ["TFGallery", "CDNNLMatmul"], swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "TransFaceFuzzHarness", dependencies: ["TFCore", "TFModel", "TFImage", "TFData", "TFTrain", "TFConvert", "TFGallery"]),
        .executableTarget(name: "TransFaceFuzz", dependencies: ["TransFaceFuzzHarness"]),
        // Official state_dicts (torch.save zip, .npz) to model files: behind `transface convert` and
        // transface_convert_state_dict (so also bindings/python's convert.py).
        .target(name: "TFConvert", dependencies: ["TFCore", "TFModel", "TFData", "CZip"]),
        .executableTarget(name: "TransFaceCLI", dependencies: [
            "TFCore", "TFKernels", "TFModel", "TFImage", "TFData", "TFEval", "TFWiring", "TFTrain", "TFConvert", "TFDetect", "TFGallery",
            "TFDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], resources: [.copy("Configs")]),
        // MTCNN face detection (facenet-pytorch 2.6.0's detect_face): convolutions as im2col + BLAS
        // GEMMs; optimised in debug builds like TFKernels.
        .target(name: "TFDetect", dependencies: ["TFCore", "TFModel"], swiftSettings: [.unsafeFlags(["-O"] + kernelCPUFlags)]),
        // The detector's measurement tool (landmark error, timing server) behind bindings/python/benchmarks/mtcnn_*.py.
        .target(name: "TFDetectTestSupport", dependencies: ["TFCore", "TFModel", "TFConvert", "TFTestSupport"], path: "Tests/TFDetectTestSupport"),
        .executableTarget(name: "TFDetectBench", dependencies: ["TFDetect", "TFDetectTestSupport", "TFImage"], path: "Tests/TFDetectBench"),
        // The distributed-training checks that Tests/MPI/run.sh runs under mpirun.
        .executableTarget(name: "TFMPICheck", dependencies: ["TFCore", "TFDistributed", "TFModel", "TFTrain"], path: "Tests/MPICheck"),
        // Per-step communication and throughput of distributed training (Tests/MPI/bench.sh; not a test).
        .executableTarget(name: "TFMPIBench", dependencies: ["TFCore", "TFDistributed", "TFTrain"], path: "Tests/MPIBench"),
        .target(name: "TFTestSupport", dependencies: ["TFCore", "TFModel"], path: "Tests/TFTestSupport"),
        .testTarget(name: "TFKernelsTests", dependencies: ["TFKernels", "TFKernelsAVX512", "TFTestSupport"]),
        // Fixtures/: model files written before the header had a kind, which must load unchanged.
        .testTarget(name: "TFModelTests", dependencies: ["TFModel", "TFTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TFImageTests", dependencies: ["TFImage", "TFTestSupport"]),
        .testTarget(name: "TFDataTests", dependencies: ["TFData", "TFImage", "TFWiring", "TFTestSupport"]),
        .testTarget(name: "TFEvalTests", dependencies: ["TFEval", "TFImage", "TFWiring", "TFTestSupport"]),
        .testTarget(name: "TFTrainTests", dependencies: ["TFTrain", "TFTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TFConvertTests", dependencies: ["TFConvert", "TFModel", "TFData", "TFTestSupport"]),
        // Fixtures/: the shipped recipes as they were before bases, which the new ones must resolve to.
        .testTarget(name: "TransFaceCLITests", dependencies: ["TransFaceCLI", "TFModel", "TFImage", "TFData", "TFEval", "TFWiring", "TFTrain", "TFTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "TransFaceCTests", dependencies: ["TransFaceC", "TFModel", "TFTestSupport", "CTransFace"]),
        .testTarget(name: "TFDetectTests", dependencies: ["TFDetect", "TFDetectTestSupport", "TFImage", "TFModel"], exclude: ["Fixtures", "README.md"]),
        .testTarget(name: "TransFaceFuzzTests", dependencies: ["TransFaceFuzzHarness"]),
        .testTarget(name: "TFGalleryTests", dependencies: ["TFGallery", "TFTestSupport", "TransFaceFuzzHarness"]),
    ],
    swiftLanguageModes: [.v5]
)
