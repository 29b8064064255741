import TFCore
import TFData
import TFEval
import TFImage
import TFModel

extension FacePreparer {
    /// TFImage's decoder and insightface's `norm_crop` alignment (similarity transform onto the
    /// model's template, bilinear warp).
    public static let standard = FacePreparer(decode: DataLoader.standardDecoder, align: { pixels, width, height, landmarks, template, size in
        try pixels.withUnsafeBufferPointer { p in
            let view = try ImageView(base: p.baseAddress!, width: width, height: height, format: .rgb)
            return try FaceAlignment.align(view, landmarks: landmarks, template: template, size: size).image.pixels
        }
    })
}

extension ModelEmbeddingSource {
    /// A model source decoding with TFImage and aligning with 5 landmarks when given.
    public convenience init(embedder: Embedder) {
        self.init(embedder: embedder, preparer: .standard)
    }
}

extension Evaluation {
    /// A model on a `.bin` set (see `verify(bin:source:flip:options:name:)`).
    public static func verify(binPath: String, embedder: Embedder, flip: Bool = true,
                              options: Verification.Options = .init()) throws -> Verification.Report {
        try verify(binPath: binPath, source: ModelEmbeddingSource(embedder: embedder), flip: flip, options: options)
    }

    /// A model on a pairs list, images aligned with `landmarks` when given.
    public static func verify(pairs: PairList, root: String, landmarks: LandmarkTable? = nil, preferring: [String] = [],
                              embedder: Embedder, flip: Bool = true,
                              options: Verification.Options = .init()) throws -> Verification.Report {
        try verify(pairs: pairs, root: root, landmarks: landmarks, preferring: preferring,
                   source: ModelEmbeddingSource(embedder: embedder), flip: flip, options: options)
    }

    /// A model on IJB-B/C 1:1.
    public static func verifyIJB(root: String, target: String, embedder: Embedder, options: IJB.Options = .init(),
                                 fars: [Double] = ROCCurve.standardFARs, name: String = "model") throws -> TARReport {
        try verifyIJB(root: root, target: target, source: ModelEmbeddingSource(embedder: embedder), options: options,
                      fars: fars, name: name)
    }
}
