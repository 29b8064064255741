import TFCore
import TFModel

/// What a gallery's embeddings are tied to: the model that made them. Embeddings of two
/// models are not comparable, so a gallery refuses to be opened, searched or enrolled into
/// with another model's fingerprint.
public struct GalleryFingerprint: Equatable, Sendable, CustomStringConvertible {
    /// The architecture, as `arch` plus the shape (e.g. "vit_s img112 p9 D512 depth12 heads8 mlp2048").
    public let architecture: String
    /// Length of one embedding.
    public let embeddingSize: Int
    /// 64-bit FNV-1a hash of the float32 weight slab's bytes (`fnv1a64(_:)`).
    public let weightsHash: UInt64

    /// Longest architecture string a gallery file holds (bytes of UTF-8).
    public static let maxArchitectureBytes = 255
    /// Longest embedding a gallery holds.
    public static let maxEmbeddingSize = 65536

    public init(architecture: String, embeddingSize: Int, weightsHash: UInt64) throws {
        try require(!architecture.isEmpty && architecture.utf8.count <= GalleryFingerprint.maxArchitectureBytes,
                    "gallery fingerprint: architecture must be 1...\(GalleryFingerprint.maxArchitectureBytes) bytes, got \(architecture.utf8.count)")
        try require(embeddingSize >= 1 && embeddingSize <= GalleryFingerprint.maxEmbeddingSize,
                    "gallery fingerprint: embedding size \(embeddingSize) is outside 1...\(GalleryFingerprint.maxEmbeddingSize)")
        self.architecture = architecture
        self.embeddingSize = embeddingSize
        self.weightsHash = weightsHash
    }

    /// The fingerprint of a loaded model: its architecture, embedding size and the hash of its
    /// whole parameter slab (one pass over the weights: ~0.1 s per 100 M parameters).
    public init(model: TransFaceModel) throws {
        let c = model.config
        let arch = "\(c.arch) img\(c.imgSize) p\(c.patchSize) D\(c.embedDim) depth\(c.depth) heads\(c.numHeads) mlp\(c.mlpHiddenDim)"
        var hash = FNV1a64()
        try model.forEachFloat32Span { hash.add(UnsafeRawBufferPointer($0)) }
        try self.init(architecture: arch, embeddingSize: c.embeddingSize, weightsHash: hash.value)
    }

    public var description: String {
        "\(architecture), embedding \(embeddingSize), weights \(String(weightsHash, radix: 16, uppercase: false).leftPadded(16))"
    }
}

/// 64-bit FNV-1a over 8-byte little-endian words (then the remaining bytes one by one).
public func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h = FNV1a64()
    h.add(bytes)
    return h.value
}

/// `fnv1a64` fed in pieces: the same value as one call over the concatenated bytes.
public struct FNV1a64 {
    private var h: UInt64 = 0xcbf2_9ce4_8422_2325
    private var pending: UInt64 = 0   // up to 7 bytes of an unfinished word, little-endian
    private var pendingCount = 0
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    public init() {}

    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while pendingCount > 0 && pendingCount < 8 && i < bytes.count {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingCount))
            pendingCount += 1
            i += 1
        }
        if pendingCount == 8 {
            h = (h ^ pending) &* FNV1a64.prime
            (pending, pendingCount) = (0, 0)
        }
        let words = (bytes.count - i) / 8
        for w in 0..<words { h = (h ^ bytes.loadUnaligned(fromByteOffset: i + 8 * w, as: UInt64.self)) &* FNV1a64.prime }
        i += 8 * words
        while i < bytes.count {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingCount))
            pendingCount += 1
            i += 1
        }
    }

    /// The hash of everything added (an unfinished word's bytes hashed one by one).
    public var value: UInt64 {
        var v = h
        for b in 0..<pendingCount { v = (v ^ ((pending >> (8 * UInt64(b))) & 0xFF)) &* FNV1a64.prime }
        return v
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
